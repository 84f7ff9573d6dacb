"""Issue 2 acceptance: rollback, lock, crash and resume, backup, bad input, no PII in output."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import ObjectId
from pymongo.database import Database

from linkage.core.app_schema import APP_COLLECTIONS
from linkage.core.errors import LinkageError, LockHeldError
from linkage.core.models import RunState
from linkage.core.settings import Settings
from linkage.dev.seed import seed
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.backup import take_backup
from linkage.stages.executor import migrate, undo_run
from linkage.store import backup
from linkage.store.lease import LOCK_ID, Lease

from helpers import ROOT, cli_env, empty_app, last_json, run_cli, snapshot


def test_rollback_restores_before_images_but_keeps_the_apps_later_writes(
        lk: Linkage, settings: Settings, db: Database, seeded: dict) -> None:
    before = snapshot(db)
    result = migrate(lk, MigrationParams(), "test")
    unlinked = [oid for oid, d in before["delivery_statuses"].items() if d.get("order_id") in (None, "")]
    linked_ds = db.delivery_statuses.find_one({"order_id": {"$gt": ""}, "_id": {"$in": unlinked}})
    linked_user = next(u for u in db.users.find({"customer_v2_id": {"$gt": ""}})
                       if before["users"][u["_id"]].get("customer_v2_id") in (None, ""))
    # the "app" re-points one delivery and edits a linked user's name after the run
    db.delivery_statuses.update_one({"_id": linked_ds["_id"]}, {"$set": {"order_id": "fixed-by-support"}})
    db.users.update_one({"_id": linked_user["_id"]}, {"$set": {"name": "Renamed By App"}})

    done = run_cli(settings, "rollback", "--run-id", result.run_id, "--json")
    assert done.returncode == 0, done.stderr
    report = last_json(done.stdout)
    assert report["state"] == "rolled_back"
    written = sum(len(record.writes) for record in lk.journal.records(result.run_id))
    assert report["rollback"] == {"restored": written - 1, "already": 0, "kept": 1, "already_rolled_back": False}

    again = run_cli(settings, "rollback", "--run-id", result.run_id)
    assert again.returncode == 0, again.stderr
    assert f"run {result.run_id} was already rolled back: nothing to do" in again.stdout
    after = snapshot(db)
    for name in APP_COLLECTIONS:
        for oid, doc in after[name].items():
            if oid == linked_ds["_id"]:
                assert doc["order_id"] == "fixed-by-support"
            elif oid == linked_user["_id"]:
                assert doc == {**before["users"][oid], "name": "Renamed By App"}
            else:
                assert doc == before[name][oid], f"{name} {oid}"


def test_rollback_of_an_unknown_run_fails_with_a_clear_message(settings: Settings, db: Database) -> None:
    empty_app(db)
    done = run_cli(settings, "rollback", "--run-id", "migrate-nope")
    assert done.returncode != 0
    assert "unknown run id 'migrate-nope'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_second_migrate_fails_fast_naming_the_holder(lk: Linkage, settings: Settings, seeded: dict) -> None:
    held = Lease.acquire(lk.lock, "migrate-holder", "airflow:linkage_migration/manual__1", 60)
    try:
        started = time.monotonic()
        done = run_cli(settings, "migrate", "--new")
        assert done.returncode != 0
        assert time.monotonic() - started < 30
        assert "migrate-holder" in done.stderr and "airflow:linkage_migration/manual__1" in done.stderr
    finally:
        held.release()


@pytest.mark.both_servers
def test_a_live_lease_is_respected_an_expired_or_dead_one_taken_over(lk: Linkage, db: Database) -> None:
    lease = Lease.acquire(lk.lock, "run-a", "a", 60)
    with pytest.raises(LockHeldError, match="run-a"):
        Lease.acquire(lk.lock, "run-b", "b", 60)
    # another host's lease: only its TTL frees it
    lk.lock.update_one({"_id": LOCK_ID}, {"$set": {"host": "elsewhere", "pid": 1}})
    with pytest.raises(LockHeldError):
        Lease.acquire(lk.lock, "run-b", "b", 60)
    lk.lock.update_one({"_id": LOCK_ID}, {"$set": {"expires_at": time.time() - 1}})
    taken = Lease.acquire(lk.lock, "run-b", "b", 60)
    assert lk.lock.find_one({"_id": LOCK_ID})["taken_over"] == {"from_run": "run-a", "reason": "lease expired"}
    # the old holder notices at its next heartbeat
    lease.renew()
    with pytest.raises(Exception, match="lost the migration lock"):
        lease.guard()
    # a holder on this host whose process is gone: taken over at once
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lk.lock.update_one({"_id": LOCK_ID}, {"$set": {"host": socket.gethostname(), "pid": int(dead.stdout)}})
    Lease.acquire(lk.lock, "run-c", "c", 60)
    assert "no longer exists" in lk.lock.find_one({"_id": LOCK_ID})["taken_over"]["reason"]
    taken.release()


@pytest.mark.parametrize("doc", [
    {"_id": ObjectId(), "id": "u1"},  # the fast path
    {"_id": "u-17", "id": "u17"},
    {"_id": 17},
    {"id": "x", "_id": ObjectId()},  # `_id` not first
    {"_id": {"tenant": 3, "n": 1}},
])
def test_a_dumped_documents_id_is_read_exactly_whatever_its_type_or_place(doc: dict[str, Any]) -> None:
    assert backup.document_id(bson.encode(doc)) == doc["_id"]


def test_backup_is_mongodump_layout_verified_and_restores_identically(
        lk: Linkage, db: Database, client, seeded: dict) -> None:
    before = snapshot(db)
    run_id, _ = start_run(lk, MigrationParams(), "test")
    record = take_backup(lk, run_id)
    root = Path(record.path)
    for name in ("delivery_statuses", "users", "customers_v2"):
        assert (root / db.name / f"{name}.bson.gz").exists()
        assert (root / db.name / f"{name}.metadata.json.gz").exists()
    manifest = backup.verify(root)
    assert manifest.collections["users"].count == len(before["users"])

    target = client[f"{db.name}_restored"]
    try:
        backup.restore(root, target)
        for name in manifest.collections:
            assert {d["_id"]: d for d in target[name].find()} == before[name]
    finally:
        client.drop_database(target.name)

    with (root / db.name / "users.bson.gz").open("r+b") as f:  # corrupt one byte
        f.seek(40)
        f.write(b"\x00")
    with pytest.raises(LinkageError, match=f"backup {root} is corrupt: users"):
        backup.verify(root)


def test_bad_documents_are_categorised_never_linked_never_a_crash(lk: Linkage, db: Database) -> None:
    db.orders.insert_many([{"id": "o1", "customer_id": "c1", "delivery_date": "2026-02-01", "status": "delivered"}])
    bad_dates = [{"id": "d1", "customer_id": "c1", "delivery_date": v} for v in
                 ["2026-02-31", "01/02/2026", 20260201, None, [], {"d": 1}, "x" * 100_000, "２０２６-02-01", True]]
    bad_customers = [{"id": "d2", "customer_id": v, "delivery_date": "2026-02-01"}
                     for v in [None, 1, "", "  ", ["c1"], {"c": 1}]]
    neither = [{"id": "d3"}]
    not_single = [{"customer_id": "c1", "delivery_date": "2026-02-01", "order_id": ["o1"]}]
    db.delivery_statuses.insert_many(bad_dates + bad_customers + neither + not_single)
    db.customers_v2.insert_many([{"id": "k1", "phone": "9876543210", "email": "a@b.co"}])
    bad_contacts = [(None, None), (98765, "nope"), ("", 42), ({"x": 1}, ["a@b.co"]), (True, "a@@b.co"),
                    ("١٢٣٤٥٦٧٨٩٠", None)]
    db.users.insert_many([{"id": f"u{i}", "role": "customer", "phone": p, "email": e}
                          for i, (p, e) in enumerate(bad_contacts)])
    result = migrate(lk, MigrationParams(min_order_coverage=0, min_user_coverage=0), "test")
    assert result.state == "succeeded"
    od, uc = result.steps["order_delivery"], result.steps["user_customer"]
    assert od["invalid"] == len(bad_dates) + len(bad_customers) + len(neither)
    assert od["dangling"] == len(not_single) and od["linked"] == 0
    assert uc["invalid"] == len(bad_contacts) and uc["linked"] == 0
    assert [d for d in db.delivery_statuses.find() if d.get("order_id") == "o1"] == []
    item = lk.reviews.coll.find_one({"category": "invalid", "reason": {"$regex": "delivery_date"}})
    assert item and item["collection"] == "delivery_statuses" and item["document_id"] == "d1"


@pytest.mark.slow
def test_no_password_phone_or_email_in_output_records_or_reviews(
        settings: Settings, db: Database, lk: Linkage, seeded: dict) -> None:
    raw_phones = {str(u["phone"]) for u in db.users.find() if u.get("phone")} | {
        str(c["phone"]) for c in db.customers_v2.find()}
    raw_emails = {u["email"].strip() for u in db.users.find() if isinstance(u.get("email"), str) and "@" in u["email"]}
    runs = [run_cli(settings, command, "--json") for command in ("plan", "migrate", "status")]
    secret_uri = settings.mongo_uri.replace("mongodb://", "mongodb://linkage:Pa55word-XYZ@")
    refused = run_cli(settings, "status", env={"LINKAGE_MONGO_URI": secret_uri})
    assert refused.returncode != 0 and "***" in refused.stderr
    stored = [json.dumps(list(db[name].find()), default=str) for name in
              (settings.collection("runs"), settings.collection("review"), settings.collection("journal"))]
    text = "\n".join([*(r.stdout + r.stderr for r in runs), refused.stdout + refused.stderr, *stored])
    assert "Pa55word-XYZ" not in text
    leaked = [p for p in raw_phones if len(p) >= 10 and p in text] + [e for e in raw_emails if e in text]
    assert leaked == []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_run_killed_mid_backfill_resumes_to_the_uninterrupted_state(
        settings: Settings, client, db: Database, tmp_path: Path) -> None:
    seed(db, customers=1500, seed_value=5)
    reference = client[f"{db.name}_ref"]
    seed(reference, customers=1500, seed_value=5)
    try:
        env = cli_env(settings)
        victim = subprocess.Popen([sys.executable, "-m", "linkage.cli.main", "migrate", "--batch-size", "100",
                                   "--quiet"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        journal = db[settings.collection("journal")]
        deadline = time.monotonic() + 120
        while journal.count_documents({"step": "order_delivery", "state": "applied"}) < 5:
            assert victim.poll() is None and time.monotonic() < deadline, "run ended before it could be killed"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_run = db[settings.collection("runs")].find_one()["_id"]
        assert db[settings.collection("runs")].find_one()["state"] == RunState.RUNNING

        resumed = run_cli(settings, "migrate", "--json", "--quiet", "--batch-size", "100")
        assert resumed.returncode == 0, resumed.stderr
        report = last_json(resumed.stdout)
        assert report["run_id"] == killed_run and report["state"] == "succeeded"

        ref_settings = Settings(mongo_uri=settings.mongo_uri, db=reference.name, home=tmp_path / "ref",
                                app_quiet=settings.app_quiet)
        uninterrupted = migrate(Linkage(ref_settings, client), MigrationParams(batch_size=100),
                                         "test")
        assert report["steps"] == uninterrupted.steps
        strip = lambda d: {k: v for k, v in d.items() if k != "_id"}  # noqa: E731  (same seed, other ObjectIds)
        for name in APP_COLLECTIONS:
            key = lambda d: d["id"] if isinstance(d.get("id"), str) else repr(sorted(strip(d).items(), key=str))  # noqa: E731
            got = sorted((strip(d) for d in db[name].find()), key=key)
            want = sorted((strip(d) for d in reference[name].find()), key=key)
            assert got == want, name
        applied = list(journal.find({"run_id": killed_run, "state": {"$ne": "applied"}}))
        assert applied == []
    finally:
        client.drop_database(reference.name)


def test_a_link_the_app_sets_between_plan_and_write_is_kept_and_not_journaled(
        lk: Linkage, db: Database, seeded: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from linkage.relations import order_delivery

    planner, raced = order_delivery.plan_batch, []

    def plan_then_app_writes(db_: Database, tz: Any, batch: list[dict]) -> Any:
        plan = planner(db_, tz, batch)
        if plan.writes and not raced:  # the app links one planned delivery itself, meanwhile
            raced.append(plan.writes[0].oid)
            db.delivery_statuses.update_one({"_id": raced[0]}, {"$set": {"order_id": "set-by-app"}})
        return plan

    monkeypatch.setattr(order_delivery, "plan_batch", plan_then_app_writes)
    result = migrate(lk, MigrationParams(steps=["order_delivery"], min_user_coverage=0), "test")
    planted = seeded["planted"]["order_delivery"]
    counts = result.steps["order_delivery"]
    assert counts["linked"] == planted["linked"] - 1
    assert counts["already_linked"] == planted["already_linked"] + 1
    assert db.delivery_statuses.find_one({"_id": raced[0]})["order_id"] == "set-by-app"
    journaled = [w.oid for record in lk.journal.records(result.run_id) for w in record.writes]
    assert raced[0] not in journaled
    undo_run(lk, result.run_id)
    assert db.delivery_statuses.find_one({"_id": raced[0]})["order_id"] == "set-by-app"


@pytest.mark.both_servers
def test_a_restore_that_meets_a_refused_document_fails_naming_it_and_puts_back_the_rest(
        db: Database, tmp_path: Path) -> None:
    db.people.insert_many([{"_id": 1, "k": "a"}, {"_id": 2, "k": "b"}, {"_id": 3, "k": "c"}])
    root = tmp_path / "targeted"
    backup.dump(db, ["people"], root, "run-x", ids={"people": [1, 2]})
    db.people.update_many({"_id": {"$in": [1, 2]}}, {"$set": {"k": "changed"}})
    db.people.update_one({"_id": 1}, {"$set": {"k": "z"}})
    db.people.insert_one({"_id": 4, "k": "b"})  # the app's later write now holds 2's old key
    db.people.create_index("k", unique=True)
    with pytest.raises(backup.RestoreRefused, match=r"people: 1 \(_id 2\); restored people 1"):
        backup.restore(root, db)
    assert db.people.find_one({"_id": 1}) == {"_id": 1, "k": "a"}  # put back
    assert db.people.find_one({"_id": 2}) == {"_id": 2, "k": "changed"}  # refused: left as the app has it
