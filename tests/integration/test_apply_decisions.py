"""Issue 19, part 3 and 4: people's decisions carried out as a run like any other, and remembered.

Against the real wire server on seeded data after `migrate`: the CSV round trip end to end (a refused
import, the fixed one, the decisions run writing exactly what was decided, validation passing, the
rollback byte-exact, the same decisions applied again giving the same data), a stale decision written
nowhere and back in the queue, a rejected run writing nothing, the CLI's run with its approver, and
five nights of reconcile with app traffic that keep decided items closed until a key field changes.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database
from test_decisions import as_saved, export

from linkage.core.models import RunKind, RunState
from linkage.core.settings import Settings
from linkage.review.intake import DecisionInput, DecisionsRefused, import_csv, record_decisions
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.approval import approve
from linkage.stages.executor import migrate, undo_run
from linkage.store.decisions import DecisionStatus

from helpers import last_json, raw_bytes, run_cli, snapshot

DELIVERY_COVERAGE = "delivery_statuses.order_id"


@pytest.fixture
def migrated(lk: Linkage, db: Database, seeded: dict) -> dict[str, Any]:
    report = migrate(lk, MigrationParams(), "test")
    assert report.state == RunState.SUCCEEDED
    return report.as_json()


def apply_decisions(lk: Linkage) -> Any:
    return migrate(lk, MigrationParams(), "cli:tester@here", kind=RunKind.DECISIONS, new=True)


def statuses(lk: Linkage) -> dict[str, str]:
    """Each item's newest decision's status."""
    newest: dict[str, Any] = {}
    for d in lk.decisions.coll.find().sort("_id", 1):
        newest[d["item_id"]] = d["status"]
    return newest


def changed(before: dict[str, dict], after: dict[str, dict]) -> dict[tuple[str, Any], dict[str, Any]]:
    """Per document that differs, the fields that differ (their value after; None: removed)."""
    diff = {}
    for name, docs in before.items():
        for oid, doc in docs.items():
            now = after[name][oid]
            fields = {k: now.get(k) for k in set(doc) | set(now)
                      if doc.get(k) != now.get(k) or (k in doc) != (k in now)}
            if fields:
                diff[(name, oid)] = fields
    return diff


def fill(db: Database, rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Decisions of every kind written into the export's rows, as a person fills a spreadsheet."""
    pick = {}
    for key, category, step in (("od_link", "ambiguous", "order_delivery"), ("uc_link", "ambiguous", "user_customer"),
                                ("none", "unmatched", "order_delivery"), ("clear", "dangling", "order_delivery")):
        pick[key] = next(r for r in rows if r["category"] == category and r["step"] == step and not r["decision"])
    pick["od_link"]["decision"] = pick["od_link"]["candidates"].split("|")[1]
    pick["uc_link"]["decision"] = pick["uc_link"]["candidates"].split("|")[0]
    pick["none"]["decision"] = "none"
    pick["clear"]["decision"] = "clear"
    other = next(r for r in rows
                 if r["category"] == "unmatched" and r["step"] == "order_delivery" and not r["decision"])
    delivery = db.delivery_statuses.find_one({"id": other["document_id"]})
    other["decision"] = db.orders.find_one({"customer_id": delivery["customer_id"]})["id"]  # exists, keeps the rules
    pick["other"] = other
    return pick


def test_the_csv_round_trip_applies_exactly_what_was_decided_and_rolls_back_byte_exact(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    rows = export(lk)
    pick = fill(db, rows)
    bad = next(r for r in rows if r["category"] == "ambiguous" and not r["decision"])
    bad["decision"] = "no-such-order"
    with pytest.raises(DecisionsRefused) as refused:
        import_csv(lk, as_saved(rows, ['"order_delivery:x","malformed"']), by="airflow:alice", via="view")
    assert len(refused.value.refusals) == 2 and lk.decisions.coll.count_documents({}) == 0
    bad["decision"] = ""
    fixed = as_saved(rows)
    assert import_csv(lk, fixed, by="airflow:alice", via="view").decided == 5

    before, raw_before = snapshot(db), raw_bytes(db)
    report = apply_decisions(lk)
    assert report.state == RunState.SUCCEEDED and report.validation and report.validation.success
    assert report.decisions and report.decisions.outcome == {"applied": 5}
    assert report.decisions.approval and report.decisions.approval.by == "cli:tester@here"
    assert report.decisions.preview and report.decisions.preview.deciders == {"airflow:alice": 5}
    after = snapshot(db)
    user = db.users.find_one({"_id": lk.reviews.coll.find_one({"_id": pick["uc_link"]["item_id"]})["document_oid"]})
    customer = db.customers_v2.find_one({"id": pick["uc_link"]["decision"]})
    oid = {key: lk.reviews.coll.find_one({"_id": row["item_id"]})["document_oid"] for key, row in pick.items()}
    # exactly the decided writes, both sides of the decided pair, nothing else (not the "none")
    assert changed(before, after) == {
        ("delivery_statuses", oid["od_link"]): {"order_id": pick["od_link"]["decision"]},
        ("delivery_statuses", oid["other"]): {"order_id": pick["other"]["decision"]},
        ("delivery_statuses", oid["clear"]): {"order_id": None},
        ("users", user["_id"]): {"customer_v2_id": customer["id"]},
        ("customers_v2", customer["_id"]): {"user_id": user["id"]}}
    # coverage moved by exactly the decisions: two links in, one dangling link out
    assert report.coverage_before and report.coverage_after
    cov_before, cov_after = report.coverage_before[DELIVERY_COVERAGE], report.coverage_after[DELIVERY_COVERAGE]
    assert cov_after["linked"] - cov_before["linked"] == 2 - 1
    assert set(statuses(lk).values()) == {DecisionStatus.APPLIED.value}
    assert {i["status"] for i in lk.reviews.coll.find({"_id": {"$in": [r["item_id"] for r in pick.values()]}})} == {
        "decided"}

    assert undo_run(lk, report.run_id).restored == 5  # two delivery links, a clear, both sides of the pair
    assert raw_bytes(db) == raw_before
    assert set(statuses(lk).values()) == {DecisionStatus.ROLLED_BACK.value}
    reopened = list(lk.reviews.coll.find({"_id": {"$in": [r["item_id"] for r in pick.values()]}}))
    assert {i["status"] for i in reopened} == {"open"}
    assert {i["reopened"] for i in reopened} == {f"the run that applied it ({report.run_id}) was rolled back"}

    # the same decisions again: the same data
    assert import_csv(lk, fixed, by="airflow:alice", via="view").decided == 5
    assert apply_decisions(lk).state == RunState.SUCCEEDED
    assert snapshot(db) == after


def test_a_decision_whose_document_changed_is_stale_written_nowhere_and_back_in_the_queue(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    item = lk.reviews.coll.find_one({"step": "order_delivery", "category": "ambiguous"})
    record_decisions(lk, [DecisionInput(line=1, item_id=item["_id"], decision=item["candidates"][0]["id"])],
                     by="airflow:alice", via="api")
    db.delivery_statuses.update_one({"_id": item["document_oid"]}, {"$set": {"delivery_date": "2031-01-01"}})
    before = snapshot(db)
    report = apply_decisions(lk)
    assert report.state == RunState.SUCCEEDED and report.decisions
    assert report.decisions.preview and report.decisions.preview.stale == 1
    assert report.decisions.outcome == {"stale": 1}
    assert snapshot(db) == before  # nothing written
    decision = lk.decisions.history(item["_id"])[0]
    assert decision.status == DecisionStatus.STALE
    assert decision.status_reason == "stale: delivery_date changed since the decision"
    back = lk.reviews.coll.find_one({"_id": item["_id"]})
    assert back["status"] == "open" and back["reopened"] == decision.status_reason


def test_a_rejected_run_writes_nothing_and_its_decisions_are_rejected(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    item = lk.reviews.coll.find_one({"step": "order_delivery", "category": "ambiguous"})
    record_decisions(lk, [DecisionInput(line=1, item_id=item["_id"], decision=item["candidates"][0]["id"])],
                     by="airflow:alice", via="api")
    before = raw_bytes(db)
    run_id, _ = start_run(lk, MigrationParams(), "airflow:linkage_apply_decisions/manual", kind=RunKind.DECISIONS,
                          new=True)
    approve(lk, run_id, approved=False, by="bob", via="airflow")
    run = lk.record(run_id)
    assert run.state == RunState.REJECTED and run.summary() == "rejected by bob: nothing written"
    assert run.decisions and run.decisions.approval and run.decisions.approval.by == "bob"
    assert raw_bytes(db) == before and lk.journal.coll.count_documents({"run_id": run_id}) == 0
    assert statuses(lk) == {item["_id"]: DecisionStatus.REJECTED.value}
    assert lk.reviews.coll.find_one({"_id": item["_id"]})["status"] == "open"
    # nobody answered in time: the same, said so
    record_decisions(lk, [DecisionInput(line=1, item_id=item["_id"], decision="none")], by="airflow:alice", via="api")
    timed_out, _ = start_run(lk, MigrationParams(), "airflow", kind=RunKind.DECISIONS, new=True)
    approve(lk, timed_out, approved=False, by=None, via="airflow")
    assert lk.record(timed_out).error == "rejected: nobody approved it in time"


def test_the_cli_applies_decisions_with_the_person_running_it_as_approver(
        lk: Linkage, db: Database, settings: Settings, migrated: dict[str, Any]) -> None:
    item = lk.reviews.coll.find_one({"step": "user_customer", "category": "ambiguous"})
    record_decisions(lk, [DecisionInput(line=1, item_id=item["_id"], decision=item["candidates"][0]["id"])],
                     by="airflow:alice", via="api")
    done = run_cli(settings, "apply-decisions", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    result = last_json(done.stdout)
    assert result["kind"] == "decisions" and result["state"] == "succeeded"
    assert result["decisions"]["approval"]["via"] == "cli" and result["decisions"]["approval"]["by"].startswith("cli:")
    assert result["decisions"]["outcome"] == {"applied": 1}
    assert db.users.find_one({"_id": item["document_oid"]})["customer_v2_id"] == item["candidates"][0]["id"]
    runs = lk.runs.coll.count_documents({})
    human = run_cli(settings, "apply-decisions", "--quiet")  # nothing pending: no run at all
    assert human.stdout.startswith("no pending decisions: nothing to apply") and human.returncode == 0
    assert lk.runs.coll.count_documents({}) == runs
    assert "decisions: 1 pending (1 link, 0 no match, 0 clears, 0 stale)" in run_cli(
        settings, "rollback", "--run-id", result["run_id"]).stdout


def _traffic(db: Database, night: int) -> None:
    """A day of the app: new linkable pairs and deliveries, and an unrelated delivery's status touched."""
    tag = f"n{night}"
    db.customers_v2.insert_one({"id": f"{tag}-c", "email": f"{tag}@example.test"})
    db.users.insert_one({"id": f"{tag}-u", "role": "customer", "email": f"{tag}@example.test"})
    db.orders.insert_one({"id": f"{tag}-o", "customer_id": f"{tag}-k", "delivery_date": "2026-05-01",
                          "status": "delivered"})
    db.delivery_statuses.insert_one({"id": f"{tag}-d", "customer_id": f"{tag}-k", "delivery_date": "2026-05-01"})


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_decisions_are_remembered_over_five_nights_until_a_key_field_changes(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    unmatched = lk.reviews.coll.find_one({"step": "order_delivery", "category": "unmatched"})
    ambiguous = lk.reviews.coll.find_one({"step": "order_delivery", "category": "ambiguous"})
    chosen = ambiguous["candidates"][0]["id"]
    record_decisions(lk, [DecisionInput(line=1, item_id=unmatched["_id"], decision="none", note="no order exists"),
                          DecisionInput(line=2, item_id=ambiguous["_id"], decision=chosen)],
                     by="airflow:alice", via="view")
    applied = apply_decisions(lk)
    assert applied.decisions and applied.decisions.outcome == {"applied": 2}
    assert db.delivery_statuses.find_one({"_id": ambiguous["document_oid"]})["order_id"] == chosen
    # one more decided, and approved by a second person, before the first night (its decisions run stopped
    # before it wrote): the nightly run carries it out first, through the same phase
    later = lk.reviews.coll.find_one({"step": "user_customer", "category": "ambiguous"})
    record_decisions(lk, [DecisionInput(line=1, item_id=later["_id"], decision=later["candidates"][0]["id"])],
                     by="airflow:bob", via="api")
    halted, _ = start_run(lk, MigrationParams(), "airflow", kind=RunKind.DECISIONS, new=True)
    approve(lk, halted, approved=True, by="carol", via="airflow")
    decided = [unmatched["_id"], ambiguous["_id"], later["_id"]]
    for night in range(1, 6):
        _traffic(db, night)
        if night == 4:  # the app corrects the delivery a person said has no order
            db.delivery_statuses.update_one({"_id": unmatched["document_oid"]},
                                            {"$set": {"delivery_date": "2026-06-30"}})
        report = migrate(lk, MigrationParams(), f"night {night}", kind=RunKind.RECONCILE, new=True)
        assert report.state == RunState.SUCCEEDED, (night, report.error)
        assert (report.decisions.outcome if report.decisions else {}) == ({"applied": 1} if night == 1 else {})
        assert db.users.find_one({"_id": later["document_oid"]}).get("customer_v2_id") == (
            later["candidates"][0]["id"])
        items = {i["_id"]: i for i in lk.reviews.coll.find({"_id": {"$in": decided}})}
        # closed: decided, or resolved once a night's rules find the pair linked (the nightly repair walks it)
        assert items[ambiguous["_id"]]["status"] == "decided", night
        assert items[later["_id"]]["status"] in ("decided", "resolved"), night
        if night < 4:
            assert items[unmatched["_id"]]["status"] == "decided", night
        else:
            assert items[unmatched["_id"]]["status"] == "open", night
            reopened = items[unmatched["_id"]]["reopened"]
            assert reopened.startswith("delivery_date changed since"), (night, reopened)
        alerts = list(lk.alerts.coll.find({"run_id": report.run_id}))
        named = [a for a in alerts if any(str(unmatched["document_oid"]) in str(v) or unmatched["_id"] in str(v)
                                          for v in a.values())]
        assert named == [] or night >= 4, (night, named)
        if night in (2, 3):  # clean app traffic and closed decisions: nothing to page about
            assert not [a for a in alerts if a["event"] in ("drift_found", "drift_reminder")], (night, alerts)


def test_a_decisions_run_is_judged_on_its_writes_not_on_coverage_it_did_not_make(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    item = lk.reviews.coll.find_one({"step": "order_delivery", "category": "ambiguous"})
    undo_run(lk, migrated["run_id"])  # coverage far below every threshold, and not the decisions' doing
    record_decisions(lk, [DecisionInput(line=1, item_id=item["_id"], decision=item["candidates"][0]["id"])],
                     by="airflow:alice", via="api")
    applied = apply_decisions(lk)
    assert applied.state == RunState.SUCCEEDED and applied.validation and applied.validation.success
    assert applied.coverage_after and applied.coverage_after[DELIVERY_COVERAGE]["ratio"] < 0.5
    assert db.delivery_statuses.find_one({"_id": item["document_oid"]})["order_id"] == item["candidates"][0]["id"]
