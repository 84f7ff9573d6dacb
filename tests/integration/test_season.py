"""Issue 20: a nightly job left running for a season. Backups sized to the change and kept by the policy,
drift that pages once, a reminder when it stays open, bounded bookkeeping and a stated rollback window.

Time is the engine handle's clock: each night is a day later, so fourteen nights run in minutes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.database import Database

from linkage.core.errors import LinkageError
from linkage.core.models import RunKind
from linkage.core.settings import Settings
from linkage.dev.seed import seed
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate, undo_run
from linkage.stages.housekeeping import housekeeping
from linkage.stages.retention import inventory, prune
from linkage.store import backup
from linkage.store.backup import Scope
from linkage.store.journal import WRITTEN_STATES

from helpers import raw_bytes, snapshot
from oracle import expected_links, links

#: Twenty days ago, at nine in the evening: the nights end before today, so the TTL indexes (which expire by the
#: server's own clock, and which the embedded server has too) leave the season's alerts alone.
START = (datetime.now(timezone.utc) - timedelta(days=20)).replace(hour=21, minute=0, second=0, microsecond=0)
NIGHTS = 14
DRIFT_NIGHTS = {3, 12}  # a week apart and more in between: the reminder falls on night 10
PARAMS = MigrationParams(batch_size=50, min_order_coverage=0.5, min_user_coverage=0.5)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def clean_day(db: Database, night: int) -> None:
    """What the app writes every day: new account pairs and deliveries with one live order, all linkable."""
    tag, date = f"s{night}", (START + timedelta(days=night)).date().isoformat()
    for i in range(3):
        digits = f"8{night:02d}{i}{night * 7 + i:06d}"
        db.customers_v2.insert_one({"id": f"{tag}-c{i}", "phone": f"+91 {digits[:5]} {digits[5:]}"})
        db.users.insert_one({"id": f"{tag}-u{i}", "role": "customer", "phone": int(digits)})
        db.orders.insert_one({"id": f"{tag}-o{i}", "customer_id": f"{tag}-k{i}", "delivery_date": date,
                              "status": "delivered"})
        db.delivery_statuses.insert_one({"id": f"{tag}-d{i}", "customer_id": f"{tag}-k{i}", "delivery_date": date})


def new_drift(db: Database, night: int, rng: random.Random) -> None:
    """An order deleted under a linked delivery, and a one-sided link the app wrote that cannot be repaired (the
    customer it names does not exist)."""
    orders = {o["id"] for o in db.orders.find({}, {"id": 1}) if isinstance(o.get("id"), str)}
    linked = sorted(d["id"] for d in db.delivery_statuses.find({"order_id": {"$gt": ""}}, {"id": 1, "order_id": 1})
                    if isinstance(d.get("id"), str) and d.get("order_id") in orders)
    db.orders.delete_one({"id": db.delivery_statuses.find_one({"id": rng.choice(linked)})["order_id"]})
    db.users.insert_one({"id": f"s{night}-lost", "role": "customer", "customer_v2_id": f"s{night}-never-created"})


def alerts_of(lk: Linkage, run_id: str) -> list[str]:
    return [a["event"] for a in lk.alerts.coll.find({"run_id": run_id}).sort("at", 1)]


def restores_to_what_it_holds(client: MongoClient, root: Path) -> None:
    """The project's restore, into an empty database, gives back exactly the documents the backup holds."""
    manifest = backup.verify(root)
    scratch = client[f"restore_{abs(hash(str(root))) % 10**8}"]
    try:
        backup.restore(root, scratch)
        raw = CodecOptions(document_class=RawBSONDocument)
        for name, entry in manifest.collections.items():
            held = sorted(backup.documents(root, entry, manifest.gzip))
            back = sorted(d.raw for d in scratch.get_collection(name, codec_options=raw).find())
            assert back == held, (root, name)
    finally:
        client.drop_database(scratch.name)


@pytest.fixture
def season(settings: Settings, client: MongoClient, db: Database) -> tuple[Linkage, Clock]:
    clock = Clock()
    seed(db, customers=300, seed_value=41)
    lk = Linkage(settings, client, clock=clock)
    assert migrate(lk, PARAMS, "day 0").state == "succeeded"
    return lk, clock


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_season_of_nights_backs_up_the_change_keeps_the_policy_and_pages_once(
        season: tuple[Linkage, Clock], client: MongoClient) -> None:
    lk, clock = season
    db, rng = lk.db, random.Random(20)
    full = next(e for e in inventory(lk) if e.scope == Scope.FULL)
    for night in range(1, NIGHTS + 1):
        clock.now = START + timedelta(days=night)
        clean_day(db, night)
        if night in DRIFT_NIGHTS:
            new_drift(db, night, rng)
        before = snapshot(db)

        report = migrate(lk, PARAMS, "nightly", kind=RunKind.RECONCILE, new=True)
        run = lk.record(report.run_id)
        assert report.state == "succeeded", (night, report.error)
        assert links(db) == expected_links(before), f"night {night}: a link the oracle does not expect"

        assert run.backup and run.backup.scope == Scope.TARGETED and run.backup.verified
        written = {w.oid for r in lk.journal.records(run.id, states=WRITTEN_STATES) for w in r.writes}
        assert sum(run.backup.counts.values()) == len(written), f"night {night}: the backup is the change"
        restores_to_what_it_holds(client, Path(run.backup.path))
        kept = inventory(lk)
        assert all(entry.needed for entry in kept), [(e.path, e.why) for e in kept if not e.needed]

        expected = ["drift_found"] if night in DRIFT_NIGHTS else ["drift_reminder"] if night == 10 else []
        assert alerts_of(lk, run.id) == expected, (night, run.paging)
        assert run.paging and run.paging.page == (night in DRIFT_NIGHTS)
        if night not in DRIFT_NIGHTS:
            assert run.summary().endswith(f"drift unchanged: {run.drift_total} open"), run.summary()

    kept = inventory(lk)
    assert sum(e.bytes for e in kept) <= 3 * full.bytes, [(e.path, e.bytes) for e in kept]
    for entry in kept:
        restores_to_what_it_holds(client, Path(entry.path))


@pytest.mark.both_servers
def test_a_targeted_backup_holds_what_the_reconcile_changed_and_restores_the_night_before(
        season: tuple[Linkage, Clock]) -> None:
    lk, clock = season
    clock.now = START + timedelta(days=1)
    clean_day(lk.db, 1)
    lk.db.customers_v2.insert_one({"id": "one-sided-c", "phone": "7000000001", "user_id": "one-sided-u"})
    lk.db.users.insert_one({"id": "one-sided-u", "role": "customer", "phone": "7100000001"})
    before = raw_bytes(lk.db)
    report = migrate(lk, PARAMS, "nightly", kind=RunKind.RECONCILE, new=True)
    run = lk.record(report.run_id)
    assert run.backup and run.backup.scope == Scope.TARGETED
    root = Path(run.backup.path)
    manifest = backup.load_manifest(root)
    held = {(name, backup.document_id(raw)) for name, entry in manifest.collections.items()
            for raw in backup.documents(root, entry, manifest.gzip)}
    written = {(w.coll, w.oid) for r in lk.journal.records(run.id, states=WRITTEN_STATES) for w in r.writes}
    assert held == written and written
    assert raw_bytes(lk.db) != before
    backup.restore(root, lk.db)
    assert raw_bytes(lk.db) == before


def test_a_run_rolls_back_inside_its_window_and_is_refused_past_it(season: tuple[Linkage, Clock]) -> None:
    lk, clock = season
    for night, age in ((1, 10), (2, 31)):
        clock.now = START + timedelta(days=night)
        clean_day(lk.db, night)
        before = raw_bytes(lk.db)
        run_id = migrate(lk, PARAMS, "nightly", kind=RunKind.RECONCILE, new=True).run_id
        clock.now += timedelta(days=age)
        done: dict[str, Any] = housekeeping(lk, run_id)
        if age < lk.settings.reversible_days:
            assert run_id not in done["journals_pruned"]
            assert undo_run(lk, run_id).restored > 0 and raw_bytes(lk.db) == before
        else:
            assert run_id in done["journals_pruned"] and lk.journal.coll.count_documents({"run_id": run_id}) == 0
            after = raw_bytes(lk.db)
            until = f"{START + timedelta(days=night + lk.settings.reversible_days):%Y-%m-%d}"
            with pytest.raises(LinkageError, match=f"no longer reversible: .* ended on {until}"):
                undo_run(lk, run_id)
            assert raw_bytes(lk.db) == after


@pytest.mark.slow
def test_retention_keeps_what_the_policy_needs_and_deletes_the_rest(season: tuple[Linkage, Clock]) -> None:
    """Sixty days on, nothing is reversible or young: the newest seven nightly backups and the newest full one
    stay, the older nightly ones go; a dry prune says so first and deletes nothing."""
    lk, clock = season
    nightly = []
    for night in range(1, 10):
        clock.now = START + timedelta(days=night)
        clean_day(lk.db, night)
        nightly.append(migrate(lk, PARAMS, "nightly", kind=RunKind.RECONCILE, new=True).run_id)
    clock.now = START + timedelta(days=60)
    backups_of = {e.run_id: e for e in inventory(lk)}
    doomed = {backups_of[run_id].path for run_id in nightly[:2]}
    assert {e.path for e in prune(lk, dry_run=True).deleted} == doomed
    assert {e.path for e in inventory(lk)} == {e.path for e in backups_of.values()}  # a dry prune deletes nothing
    done = housekeeping(lk, nightly[-1])
    assert set(done["backups"]["deleted"]) == doomed
    kept = {e.run_id: e.why for e in inventory(lk)}
    assert set(kept) == {*nightly[2:], lk.runs.coll.find_one({"kind": "migrate"})["_id"]}
    assert sum("the newest full backup" == why for why in kept.values()) == 1


def test_bookkeeping_expires_by_ttl_where_the_server_has_it_and_by_the_pass_everywhere(
        lk: Linkage, settings: Settings) -> None:
    """Measured here: the embedded server keeps `expireAfterSeconds` and expires on access; the housekeeping pass
    deletes the same documents by their age in any case, so the bounds hold whatever a server offers."""
    from linkage.stages.housekeeping import expire, supports_ttl

    assert supports_ttl(lk.db, "ttl_probe_test")
    now = datetime.now(timezone.utc)
    old, young = now - timedelta(days=settings.alert_retention_days + 1), now - timedelta(days=1)
    lk.alerts.coll.insert_many([{"event": "drift_found", "at": old}, {"event": "drift_found", "at": young}])
    lk.reviews.coll.insert_many([
        {"_id": "a", "status": "resolved", "resolved_at": (now - timedelta(days=91)).timestamp()},
        {"_id": "b", "status": "resolved", "resolved_at": (now - timedelta(days=1)).timestamp()},
        {"_id": "c", "status": "open"}])
    assert expire(lk, now) == {"review_items": 1, "alerts": 1, "runs": 0}
    assert [a["at"].date() for a in lk.alerts.coll.find()] == [young.date()]
    assert sorted(i["_id"] for i in lk.reviews.coll.find()) == ["b", "c"]
