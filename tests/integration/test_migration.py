"""Issue 2 acceptance: the engine against the real wire server, checked by an oracle."""

from __future__ import annotations

import pytest
from pymongo.database import Database

from linkage.core.app_schema import APP_COLLECTIONS
from linkage.core.settings import Settings
from linkage.dev.seed_truth import TRUTH
from linkage.engine.coverage import link_coverage
from linkage.relations import REGISTRY
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate

from helpers import last_json, raw_bytes, run_cli, snapshot, without_links
from oracle import expected_order_links, expected_user_links


@pytest.mark.both_servers
def test_migrate_counts_equal_what_seed_planted_and_every_link_is_justified(
        settings: Settings, db: Database, seeded: dict) -> None:
    before = snapshot(db)
    done = run_cli(settings, "migrate", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    report = last_json(done.stdout)

    assert report["state"] == "succeeded"
    for step, planted in seeded["planted"].items():
        nonzero = {k: v for k, v in report["steps"][step].items() if v}
        assert nonzero == planted, step

    after = snapshot(db)
    order_links = expected_order_links(list(before["delivery_statuses"].values()), list(before["orders"].values()))
    for oid, doc in after["delivery_statuses"].items():
        want = order_links.get(oid, before["delivery_statuses"][oid].get("order_id"))
        assert doc.get("order_id") == want, f"delivery {oid}"
    user_links = expected_user_links(list(before["users"].values()), list(before["customers_v2"].values()))
    customer_of = {cid: uid for uid, cid in user_links.items()}
    user_ids = {oid: u["id"] for oid, u in before["users"].items()}
    for oid, doc in after["users"].items():
        want = user_links.get(oid, before["users"][oid].get("customer_v2_id"))
        assert doc.get("customer_v2_id") == want, f"user {oid}"
    for oid, doc in after["customers_v2"].items():
        cid = doc["id"]
        want = user_ids[customer_of[cid]] if cid in customer_of else before["customers_v2"][oid].get("user_id")
        assert doc.get("user_id") == want, f"customer {oid}"

    assert len(order_links) == report["steps"]["order_delivery"]["linked"]
    assert len(user_links) == report["steps"]["user_customer"]["linked"]
    for name in APP_COLLECTIONS:  # nothing but the link fields changed, nothing appeared or vanished
        assert after[name].keys() == before[name].keys()
        for oid, doc in after[name].items():
            assert without_links(name, doc) == without_links(name, before[name][oid])


def test_second_migrate_links_nothing_and_modifies_nothing(lk: Linkage, db: Database, seeded: dict) -> None:
    migrate(lk, MigrationParams(), "test")
    between = snapshot(db)
    again = migrate(lk, MigrationParams(), "test", new=True)
    assert again.state == "succeeded"
    assert all(counts["linked"] == 0 for counts in again.steps.values())
    assert snapshot(db) == between


@pytest.mark.both_servers
def test_plan_reports_the_real_runs_counts_and_writes_nothing_but_its_own_record(
        lk: Linkage, settings: Settings, db: Database, seeded: dict) -> None:
    raw_before = raw_bytes(db)
    planned = run_cli(settings, "plan", "--json", "--quiet")
    assert planned.returncode == 0, planned.stderr
    plan = last_json(planned.stdout)
    assert plan["dry_run"] is True and plan["state"] == "succeeded"
    assert raw_bytes(db) == raw_before
    assert "order_id_1" not in {i["name"] for i in db["delivery_statuses"].list_indexes()}
    holding = {name for name in db.list_collection_names()
               if name.startswith(settings.prefix) and db[name].estimated_document_count()}
    # no review items, no scratch (the seed's truth was there before the plan)
    assert holding - {TRUTH} == {settings.collection("runs"), settings.collection("journal")}
    assert plan["drift"]["total"] > 0  # what it found is in its own record (the seed plants dangling links)

    real = migrate(lk, MigrationParams(), "test")
    assert plan["steps"] == real.steps
    assert real.drift and plan["drift"]["by_expectation"] == real.drift.by_expectation  # the real run also says
    assert plan["drift"]["total"] == real.drift.total and plan["drift"]["new"] == {}  # which of it is new


def test_resume_picks_up_the_unfinished_run_and_finished_runs_are_not_resumed(
        lk: Linkage, db: Database, seeded: dict) -> None:
    run_id, resumed = start_run(lk, MigrationParams(), "test")
    assert not resumed
    again, resumed = start_run(lk, MigrationParams(), "test")
    assert (again, resumed) == (run_id, True)
    result = migrate(lk, MigrationParams(), "test")
    assert result.run_id == run_id and result.state == "succeeded"
    assert lk.runs.get(run_id)["attempts"] == 3
    fresh = migrate(lk, MigrationParams(steps=["order_delivery"]), "test")
    assert fresh.run_id != run_id


def test_run_record_is_complete(lk: Linkage, seeded: dict) -> None:
    found = link_coverage(lk.db, REGISTRY.relations())
    result = migrate(lk, MigrationParams(batch_size=250), "cli:tester@host")
    run = lk.runs.get(result.run_id)
    assert run["coverage_before"] == found and run["coverage_after"] == link_coverage(lk.db, REGISTRY.relations())
    assert run["coverage_after"] != found  # the run linked something
    assert run["triggered_by"] == "cli:tester@host"
    assert run["params"]["batch_size"] == 250
    assert run["state"] == "succeeded" and run["finished_at"] and run["created_at"]
    assert set(run["steps"]) == {"order_delivery", "user_customer"}
    assert all(step["seconds"] >= 0 for step in run["steps"].values())
    assert {"backup", "create_indexes"} <= set(run["timings"])
    assert run["backup"]["verified"] is True
    indexes = run["indexes"]
    assert indexes["created"] + indexes["exists"] + len(indexes["fallbacks"]) == len(REGISTRY.indexes())
    assert run["indexes"]["created"] + len(run["indexes"]["fallbacks"]) > 0  # a fresh database had none of them
