"""Issue 2 acceptance: the engine against the real wire server, checked by an oracle."""

from __future__ import annotations

import json
from typing import Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.database import Database

from conftest import run_cli
from linkage import pipeline
from linkage.models import MigrationParams, Step
from linkage.settings import Settings
from oracle import expected_order_links, expected_user_links

LINK_FIELDS = {"delivery_statuses": {"order_id"}, "users": {"customer_v2_id"}, "customers_v2": {"user_id"}}
APP = ["users", "customers_v2", "orders", "delivery_statuses"]


def snapshot(db: Database) -> dict[str, dict[Any, dict]]:
    return {name: {d["_id"]: d for d in db[name].find()} for name in APP}


def raw_bytes(db: Database) -> dict[str, list[bytes]]:
    """Every app document's exact BSON bytes, in `_id` order."""
    raw = CodecOptions(document_class=RawBSONDocument)
    return {name: [d.raw for d in db.get_collection(name, codec_options=raw).find().sort("_id", 1)] for name in APP}


def without(doc: dict, fields: set[str]) -> dict:
    return {k: v for k, v in doc.items() if k not in fields}


def last_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


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
        assert doc.get("customer_v2_id") == user_links.get(oid, before["users"][oid].get("customer_v2_id")), f"user {oid}"
    for oid, doc in after["customers_v2"].items():
        cid = doc["id"]
        want = user_ids[customer_of[cid]] if cid in customer_of else before["customers_v2"][oid].get("user_id")
        assert doc.get("user_id") == want, f"customer {oid}"

    assert len(order_links) == report["steps"]["order_delivery"]["linked"]
    assert len(user_links) == report["steps"]["user_customer"]["linked"]
    for name in APP:  # nothing but the link fields changed, nothing appeared or vanished
        assert after[name].keys() == before[name].keys()
        for oid, doc in after[name].items():
            assert without(doc, LINK_FIELDS.get(name, set())) == without(before[name][oid], LINK_FIELDS.get(name, set()))


def test_second_migrate_links_nothing_and_modifies_nothing(lk: pipeline.Linkage, db: Database, seeded: dict) -> None:
    pipeline.migrate(lk, MigrationParams(), "test")
    between = snapshot(db)
    again = pipeline.migrate(lk, MigrationParams(), "test", new=True)
    assert again["state"] == "succeeded"
    assert all(counts["linked"] == 0 for counts in again["steps"].values())
    assert snapshot(db) == between


def test_plan_reports_the_real_runs_counts_and_leaves_app_bytes_identical(
        lk: pipeline.Linkage, settings: Settings, db: Database, seeded: dict) -> None:
    raw_before = raw_bytes(db)
    planned = run_cli(settings, "plan", "--json", "--quiet")
    assert planned.returncode == 0, planned.stderr
    plan = last_json(planned.stdout)
    assert plan["dry_run"] is True
    assert raw_bytes(db) == raw_before
    assert list(db["users"].list_indexes()) and "order_id_1" not in {i["name"] for i in db["delivery_statuses"].list_indexes()}

    real = pipeline.migrate(lk, MigrationParams(), "test")
    assert plan["steps"] == real["steps"]


def test_resume_picks_up_the_unfinished_run_and_finished_runs_are_not_resumed(
        lk: pipeline.Linkage, db: Database, seeded: dict) -> None:
    run_id, resumed = pipeline.start_run(lk, MigrationParams(), "test")
    assert not resumed
    again, resumed = pipeline.start_run(lk, MigrationParams(), "test")
    assert (again, resumed) == (run_id, True)
    result = pipeline.migrate(lk, MigrationParams(), "test")
    assert result["run_id"] == run_id and result["state"] == "succeeded"
    assert lk.runs.get(run_id)["attempts"] == 3
    fresh = pipeline.migrate(lk, MigrationParams(steps=[Step.ORDER_DELIVERY]), "test")
    assert fresh["run_id"] != run_id


def test_run_record_is_complete(lk: pipeline.Linkage, seeded: dict) -> None:
    result = pipeline.migrate(lk, MigrationParams(batch_size=250), "cli:tester@host")
    run = lk.runs.get(result["run_id"])
    assert run["triggered_by"] == "cli:tester@host"
    assert run["params"]["batch_size"] == 250
    assert run["state"] == "succeeded" and run["finished_at"] and run["created_at"]
    assert set(run["steps"]) == {"order_delivery", "user_customer"}
    assert all(step["seconds"] >= 0 for step in run["steps"].values())
    assert {"backup", "create_indexes"} <= set(run["timings"])
    assert run["backup"]["verified"] is True
    assert run["indexes"]["created"] + run["indexes"]["exists"] + len(run["indexes"]["fallbacks"]) == 10
