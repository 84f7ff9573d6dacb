"""Issue 28, point 5: four eyes that hold. A decision is written only by a run whose approver is a person
other than the one who made it (`linkage.core.people.person`: the CLI's person is the OS login).

Through the real CLI against the real wire server, on seeded data after `migrate`: alice decides;
alice's `apply-decisions` writes nothing and says so in one line; a reconcile writes nothing of it;
LINKAGE_APPROVERS still narrows who may approve; bob's `apply-decisions` writes exactly alice's
decisions, leaves his own pending for someone else, and the run record names bob and alice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from test_apply_decisions import fill
from test_decisions import as_saved, export

from linkage.core.models import RunKind, RunState
from linkage.core.people import may_approve, person
from linkage.core.settings import Settings
from linkage.review.intake import DecisionInput, record_decisions
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.approval import approve
from linkage.stages.executor import migrate
from linkage.store.decisions import DecisionStatus

from helpers import last_json, run_cli

ALICE = {"USER": "alice", "LOGNAME": "alice", "LINKAGE_APPROVERS": ""}
BOB = {"USER": "bob", "LOGNAME": "bob", "LINKAGE_APPROVERS": ""}


@pytest.fixture
def migrated(lk: Linkage, db: Database, seeded: dict) -> dict[str, Any]:
    report = migrate(lk, MigrationParams(), "test")
    assert report.state == RunState.SUCCEEDED
    return report.as_json()


def test_a_person_is_the_name_without_its_channel_or_host_case_folded() -> None:
    assert person("airflow:Alice") == person("cli:alice@vm") == person("ALICE") == "alice"
    assert person("cli:root@vm") != person("airflow:admin")
    assert may_approve(None, "cli:alice@vm") and may_approve("bob, Alice", "airflow:alice")
    assert not may_approve("bob", "cli:alice@vm")


def decided_documents(db: Database, lk: Linkage, picks: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The decided documents as they are now (and the customer of the decided user-customer pair)."""
    docs = {}
    for key, row in picks.items():
        item = lk.reviews.coll.find_one({"_id": row["item_id"]})
        docs[key] = db[item["collection"]].find_one({"_id": item["document_oid"]})
    docs["customer"] = db.customers_v2.find_one({"id": picks["uc_link"]["decision"]})
    return docs


@pytest.mark.slow
def test_alices_decisions_are_written_only_once_bob_approves_them_and_the_run_names_both(
        lk: Linkage, db: Database, settings: Settings, migrated: dict[str, Any], tmp_path: Path) -> None:
    rows = export(lk)
    picks = fill(db, rows)
    (tmp_path / "alice.csv").write_text(as_saved(rows), newline="")
    decided = run_cli(settings, "decide", "--file", str(tmp_path / "alice.csv"), env=ALICE)
    assert decided.returncode == 0, decided.stderr
    assert decided.stdout.startswith("recorded 5 decisions (")
    assert {person(d.by) for d in lk.decisions.pending()} == {"alice"}
    untouched = decided_documents(db, lk, picks)

    mine = run_cli(settings, "apply-decisions", env=ALICE)
    assert (mine.returncode, mine.stderr) == (0, "")
    assert mine.stdout.splitlines() == [
        "nothing to apply: the 5 pending decisions are all alice's own; another person must apply them"]
    assert lk.runs.coll.count_documents({"kind": RunKind.DECISIONS.value}) == 0

    night = migrate(lk, MigrationParams(), "night", kind=RunKind.RECONCILE, new=True)
    assert night.state == RunState.SUCCEEDED and not (night.decisions and night.decisions.outcome)
    assert decided_documents(db, lk, picks) == untouched
    assert {d["status"] for d in lk.decisions.coll.find()} == {DecisionStatus.PENDING.value}, "the reconcile wrote some"

    refused = run_cli(settings, "apply-decisions", env={**BOB, "LINKAGE_APPROVERS": "carol"})
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "linkage apply-decisions: bob may not approve decisions: LINKAGE_APPROVERS names carol"]

    dry = last_json(run_cli(settings, "apply-decisions", "--dry-run", "--json", "--quiet", env=BOB).stdout)
    assert dry["state"] == "succeeded" and dry["dry_run"] and dry["decisions"]["preview"]["total"] == 5
    assert (dry["steps"]["order_delivery"]["linked"], dry["steps"]["user_customer"]["linked"]) == (2, 1)
    assert decided_documents(db, lk, picks) == untouched, "a dry run wrote"

    bobs = lk.reviews.coll.find_one({"status": "open", "step": "order_delivery", "category": "unmatched"})
    record_decisions(lk, [DecisionInput(line=1, item_id=bobs["_id"], decision="none")], by="cli:bob@elsewhere",
                     via="cli")
    applied = run_cli(settings, "apply-decisions", "--quiet", env={**BOB, "LINKAGE_APPROVERS": "Carol, BOB"})
    assert applied.returncode == 0, applied.stderr
    run = lk.record(lk.runs.coll.find_one({"kind": RunKind.DECISIONS.value, "dry_run": False})["_id"])
    assert run.state == RunState.SUCCEEDED and run.decisions and run.decisions.approval
    assert person(run.decisions.approval.by or "") == "bob"
    assert (run.decisions.approval.decisions, run.decisions.approval.own) == (5, 1)
    assert run.decisions.outcome == {"applied": 5}
    alice_by = next(d["by"] for d in lk.decisions.coll.find() if d["item_id"] != bobs["_id"])
    assert [p.model_dump() for p in run.decisions.people] == [
        {"by": alice_by, "approved_by": run.decisions.approval.by, "count": 5}]
    assert f"  written: 5 decisions decided by {alice_by}, approved by {run.decisions.approval.by}" in \
        applied.stdout.splitlines()
    assert "1 decision of theirs left pending for another person" in applied.stdout
    assert "left pending: " in run.summary()
    now = decided_documents(db, lk, picks)
    assert now["od_link"]["order_id"] == picks["od_link"]["decision"]
    assert now["uc_link"]["customer_v2_id"] == picks["uc_link"]["decision"] == now["customer"]["id"]
    assert now["clear"].get("order_id") is None and now["none"] == untouched["none"]
    stored = {d["item_id"]: d for d in lk.decisions.coll.find()}
    assert {d["status"] for i, d in stored.items() if i != bobs["_id"]} == {DecisionStatus.APPLIED.value}
    assert {d["approved_by"] for i, d in stored.items() if i != bobs["_id"]} == {run.decisions.approval.by}
    assert stored[bobs["_id"]]["status"] == DecisionStatus.PENDING.value
    assert stored[bobs["_id"]]["status_reason"] == ("bob cannot approve a decision of their own: it waits for "
                                                    "another person's approval")
    again = last_json(run_cli(settings, "apply-decisions", "--json", env=BOB).stdout)
    assert again["run_id"] is None and again["reason"].startswith("nothing to apply: the pending decision is bob's")


def test_a_reconcile_carries_out_what_a_second_person_approved_and_nothing_else(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    """Approved in Airflow, then its run stopped before it wrote: the nightly run writes it; the decision
    nobody else approved stays pending, unwritten."""
    items = list(lk.reviews.coll.find({"status": "open", "step": "order_delivery", "category": "ambiguous"}).limit(2))
    record_decisions(lk, [DecisionInput(line=1, item_id=items[0]["_id"], decision=items[0]["candidates"][0]["id"])],
                     by="airflow:alice", via="api")
    halted, _ = start_run(lk, MigrationParams(), "airflow:linkage_apply_decisions/manual", kind=RunKind.DECISIONS,
                          new=True)
    approve(lk, halted, approved=True, by="bob", via="airflow")
    record_decisions(lk, [DecisionInput(line=1, item_id=items[1]["_id"], decision=items[1]["candidates"][0]["id"])],
                     by="airflow:alice", via="api")
    night = migrate(lk, MigrationParams(), "night", kind=RunKind.RECONCILE, new=True)
    assert night.state == RunState.SUCCEEDED and night.decisions and night.decisions.outcome == {"applied": 1}
    assert [p.model_dump() for p in night.decisions.people] == [
        {"by": "airflow:alice", "approved_by": "bob", "count": 1}]
    first, second = (db.delivery_statuses.find_one({"_id": i["document_oid"]}) for i in items)
    assert first["order_id"] == items[0]["candidates"][0]["id"] and second.get("order_id") != \
        items[1]["candidates"][0]["id"]
    assert [d.status for d in lk.decisions.history(items[1]["_id"])] == [DecisionStatus.PENDING]


def test_the_approval_request_says_who_may_approve_each_persons_decisions() -> None:
    from linkage.airflow.approval import approval_text
    from linkage.run.record_parts import DecisionsPreview

    shown = DecisionsPreview(total=3, links=2, none=1, deciders={"airflow:admin": 2, "cli:alice@vm": 1}, approved=1)
    text = approval_text(shown, "linkage_apply_decisions:manual__1", "app")
    assert "- airflow:admin: 2 decisions, may be approved by anyone but **admin**\n" in text
    assert "- cli:alice@vm: 1 decision, may be approved by anyone but **alice**\n" in text
    assert "- of these, 1 approved already by a second person" in text
    assert "your own stay pending" in text


def test_a_rejection_rejects_the_others_decisions_and_leaves_the_rejecters_own_pending(
        lk: Linkage, migrated: dict[str, Any]) -> None:
    items = list(lk.reviews.coll.find({"status": "open", "step": "order_delivery", "category": "unmatched"}).limit(2))
    for item, by in zip(items, ("airflow:alice", "cli:Bob@vm"), strict=True):
        record_decisions(lk, [DecisionInput(line=1, item_id=item["_id"], decision="none")], by=by, via="api")
    run_id, _ = start_run(lk, MigrationParams(), "airflow", kind=RunKind.DECISIONS, new=True)
    approval = approve(lk, run_id, approved=False, by="bob", via="airflow")
    assert (approval.decisions, approval.own) == (1, 1) and lk.record(run_id).state == RunState.REJECTED
    alices, bobs = (lk.decisions.history(i["_id"])[0] for i in items)
    assert (alices.status, alices.status_reason) == (DecisionStatus.REJECTED, "rejected by bob")
    assert bobs.status == DecisionStatus.PENDING and (bobs.status_reason or "").startswith("bob cannot approve")
    assert [i["status"] for i in lk.reviews.coll.find({"_id": {"$in": [i["_id"] for i in items]}}).sort("_id", 1)] \
        == [("open" if i["_id"] == items[0]["_id"] else "decided") for i in sorted(items, key=lambda i: i["_id"])]
