"""The engine's parts: the walk (batches by join key, partitions), joins by key range, the journal's
all-or-nothing write groups, and the lease shared by one Airflow run's tasks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from pymongo.database import Database

from linkage.core.errors import LockLostError
from linkage.core.settings import DEFAULT_WRITE_CHUNK
from linkage.engine.conditional import apply_batch, revert_batch
from linkage.engine.partitions import split
from linkage.engine.passes import by_string, not_by_string, pages, where
from linkage.mongo.lookups import by_keys
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.backfill import claimed
from linkage.stages.executor import migrate
from linkage.store.journal import BatchRecord, FieldWrite
from linkage.store.lease import LOCK_ID, Lease

from helpers import empty_app


def test_keyed_batches_never_split_a_customer_and_leave_non_strings_out() -> None:
    docs = [{"_id": i, "customer_id": c} for i, c in enumerate(["a", "a", "a", ["a"], "b", "c", "c", None, "d"])]
    batches = [[d["customer_id"] for d in page] for page in pages(iter(docs), 2, "customer_id")]
    assert batches == [["a", "a", "a"], ["b", "c", "c"], ["d"]]
    assert [len(page) for page in pages(iter(docs), 4)] == [4, 4, 1]  # plain chunks by `_id`


@pytest.mark.both_servers
@pytest.mark.both_servers
def test_the_two_walks_see_every_document_once_and_partitions_keep_a_customer_whole(db: Database) -> None:
    values: list[Any] = ["a", "a", "b", "b", "c", "", "  ", None, 7, ["a"], {"c": 1}, True]
    db.delivery_statuses.insert_many([{"n": i, "customer_id": v} for i, v in enumerate(values)] + [{"n": 99}])
    walks = [(by_string("customer_id"), "customer_id", 3), (not_by_string("customer_id"), "_id", 2)]
    seen: list[int] = []
    owner: dict[str, set[int]] = {}
    for query, walk, parts in walks:
        cut = split(db.delivery_statuses, query, parts, walk)
        assert len(cut) > 1
        for part in cut:
            cursor = db.delivery_statuses.find(where(query, part.bounds(walk))).sort(walk, 1)
            for doc in (d for page in pages(cursor, 1, walk) for d in page):
                seen.append(doc["n"])
                if walk == "customer_id":
                    owner.setdefault(doc["customer_id"], set()).add(part.index)
    assert sorted(seen) == [*range(len(values)), 99]
    assert all(len(parts) == 1 for parts in owner.values())


@pytest.mark.both_servers
def test_partitions_are_cut_without_skip_into_parts_of_about_equal_size(wire_server: Any, db: Database) -> None:
    """`$bucketAuto` where the server has it, else one streamed read of the key: never a `skip`, which through
    mongos reads every skipped document on every shard."""
    db.delivery_statuses.insert_many([{"customer_id": f"c{i // 3:05d}"} for i in range(3000)])
    listener = Commands(names=("find", "aggregate"))
    watched: MongoClient = MongoClient(wire_server.uri, event_listeners=[listener])
    try:
        cut = split(watched[db.name].delivery_statuses, by_string("customer_id"), 4, "customer_id")
    finally:
        watched.close()
    sizes = [db.delivery_statuses.count_documents(where(by_string("customer_id"), p.bounds("customer_id")))
             for p in cut]
    assert len(cut) == 4 and sum(sizes) == 3000 and max(sizes) - min(sizes) <= 60, sizes
    assert listener.commands and not any("skip" in command for command in listener.commands)


class Commands(monitoring.CommandListener):
    """The `find` filters a client sent (to see which query a look-up chose), and the commands of `names`."""

    def __init__(self, names: tuple[str, ...] = ("find",)) -> None:
        self.names = names
        self.filters: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.filters.append(event.command.get("filter", {}))
        if event.command_name in self.names:
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def watched(wire_server: Any, db: Database) -> Iterator[tuple[Database, Commands]]:
    commands = Commands()
    client: MongoClient = MongoClient(wire_server.uri, event_listeners=[commands])
    yield client[db.name], commands
    client.close()


def test_a_dense_key_range_is_read_once_and_a_sparse_one_by_in(watched: tuple[Database, Commands]) -> None:
    db, commands = watched
    between = [{"id": f"m{i}", "customer_id": f"m{i:03d}"} for i in range(50)]
    db.orders.insert_many(between + [{"id": f"o{c}", "customer_id": c} for c in "az"])

    commands.filters.clear()
    assert {o["id"] for o in by_keys(db.orders, "customer_id", ["a", "z"], {"id": 1}, range_limit=8)} == {"oa", "oz"}
    assert [list(f["customer_id"]) for f in commands.filters] == [["$gte", "$lte"], ["$in"]]  # too sparse: `$in`

    commands.filters.clear()
    assert {o["id"] for o in by_keys(db.orders, "customer_id", ["m001", "m003"], {"id": 1},
                                     range_limit=8)} == {"m1", "m3"}
    assert [list(f["customer_id"]) for f in commands.filters] == [["$gte", "$lte"]]  # dense: the range, read once

    commands.filters.clear()
    by_keys(db.orders, "customer_id", ["a", "z"], {"id": 1}, range_limit=None)
    assert [list(f["customer_id"]) for f in commands.filters] == [["$in"]]  # keys not contiguous: no range


def test_a_sparse_batch_links_its_customers_orders_not_the_range_between_them(
        lk: Linkage, db: Database) -> None:
    db.orders.insert_many([{"id": f"m{i}", "customer_id": f"m{i:03d}", "delivery_date": "2026-03-01",
                            "status": "delivered"} for i in range(50)]
                          + [{"id": f"o{c}", "customer_id": c, "delivery_date": "2026-03-01", "status": "delivered"}
                             for c in "az"])
    db.delivery_statuses.insert_many([{"id": f"d{c}", "customer_id": c, "delivery_date": "2026-03-01"} for c in "az"])
    result = migrate(lk, MigrationParams(steps=["order_delivery"], min_order_coverage=0), "test")
    assert result.steps["order_delivery"]["linked"] == 2
    assert {d["id"]: d["order_id"] for d in db.delivery_statuses.find()} == {"da": "oa", "dz": "oz"}


def _pair(db: Database, n: int) -> tuple[FieldWrite, FieldWrite]:
    user = db.users.insert_one({"id": f"u{n}"}).inserted_id
    customer = db.customers_v2.insert_one({"id": f"c{n}", "user_id": None}).inserted_id
    return (FieldWrite(coll="users", oid=user, field="customer_v2_id", new=f"c{n}", group=str(user)),
            FieldWrite(coll="customers_v2", oid=customer, field="user_id", new=f"u{n}", old=None, had=True,
                       group=str(user)))


@pytest.mark.both_servers
def test_a_two_sided_group_that_lands_in_part_is_undone_and_the_rest_of_the_batch_kept(db: Database) -> None:
    whole, broken = _pair(db, 1), _pair(db, 2)
    db.customers_v2.update_one({"_id": broken[1].oid}, {"$set": {"user_id": "set-by-app"}})  # one side is taken
    record = BatchRecord(_id="r:s:p:0:0000000", run_id="r", step="s", phase="p", partition=0, seq=0,
                         writes=[*whole, *broken])
    dropped = apply_batch(db, record, DEFAULT_WRITE_CHUNK)

    assert dropped == list(broken)
    assert record.writes == list(whole)  # the journal keeps exactly what landed
    assert db.users.find_one({"_id": broken[0].oid}) == {"_id": broken[0].oid, "id": "u2"}  # its landed side undone
    assert db.customers_v2.find_one({"_id": broken[1].oid})["user_id"] == "set-by-app"
    assert db.users.find_one({"_id": whole[0].oid})["customer_v2_id"] == "c1"
    assert db.customers_v2.find_one({"_id": whole[1].oid})["user_id"] == "u1"

    undone = revert_batch(db, record, DEFAULT_WRITE_CHUNK)
    assert tuple(undone) == (2, 0, 0)
    assert "customer_v2_id" not in db.users.find_one({"_id": whole[0].oid})
    assert db.customers_v2.find_one({"_id": whole[1].oid}) == {"_id": whole[1].oid, "id": "c1", "user_id": None}
    again = revert_batch(db, record, DEFAULT_WRITE_CHUNK)
    assert tuple(again) == (0, 2, 0)  # a second rollback finds them restored, keeps nothing


@pytest.mark.both_servers
def test_a_batch_of_many_writes_some_refused_by_a_unique_index_lands_all_the_others(wire_server: Any,
                                                                                     db: Database) -> None:
    """250 conditional writes (FerretDB hangs on one command of 100; linkage sends 40 a command) of which a
    unique index refuses 3, one the first of its command, two mid-command: MongoDB and nx name them as write
    errors, FerretDB fails each whole command (then each write goes alone); either way exactly those 3 are
    dropped, the 247 others land, and the rollback restores exactly the 247."""
    db.users.create_index("customer_v2_id", unique=True, sparse=True)
    db.users.insert_many([{"id": "holder", "customer_v2_id": "c-taken"}] + [{"id": f"u{i}"} for i in range(250)])
    users = {d["id"]: d["_id"] for d in db.users.find({"id": {"$ne": "holder"}})}
    refused = {40, 95, 96}
    writes = [FieldWrite(coll="users", oid=users[f"u{i}"], field="customer_v2_id",
                         new="c-taken" if i in refused else f"c{i}", group=f"g{i}") for i in range(250)]
    record = BatchRecord(_id="r:s:p:0:0000000", run_id="r", step="s", phase="p", partition=0, seq=0, writes=writes)
    timing_out: MongoClient = MongoClient(wire_server.uri, socketTimeoutMS=30_000)  # a hang fails, not waits
    try:
        app = timing_out[db.name]
        dropped = apply_batch(app, record, DEFAULT_WRITE_CHUNK)
        assert sorted(w.group for w in dropped) == sorted(f"g{i}" for i in refused)
        assert len(record.writes) == 247
        linked = {d["id"]: d.get("customer_v2_id") for d in db.users.find()}
        assert linked == {"holder": "c-taken", **{f"u{i}": None if i in refused else f"c{i}" for i in range(250)}}
        assert tuple(revert_batch(app, record, DEFAULT_WRITE_CHUNK)) == (247, 0, 0)
        assert db.users.count_documents({"customer_v2_id": {"$exists": True}}) == 1
    finally:
        timing_out.close()


@pytest.mark.both_servers
def test_tasks_of_one_run_share_its_lease_and_a_parked_lease_is_claimed_back_by_the_run_only(db: Database) -> None:
    lock = db.linkage_lock
    Lease.acquire(lock, "run-a", "airflow:linkage_migration/manual__1", ttl=30).park()
    parked = lock.find_one({"_id": LOCK_ID})
    assert parked["run_id"] == "run-a" and parked["pid"] is None and parked["expires_at"] > time.time()

    one, two = Lease.join(lock, "run-a", 30), Lease.join(lock, "run-a", 30)  # two mapped partitions at once
    one.renew()
    two.renew()
    one.guard()
    two.guard()
    with pytest.raises(LockLostError, match="run run-b does not hold the migration lock"):
        Lease.join(lock, "run-b", 30)

    again = Lease.acquire(lock, "run-a", "retry", ttl=30)  # a parked lease: its own run claims it back
    assert lock.find_one({"_id": LOCK_ID})["taken_over"]["reason"] == "parked by this run"
    one.renew()  # joined by run id: still the run's lease
    one.guard()
    again.release()
    one.renew()
    with pytest.raises(LockLostError, match="lost the migration lock"):
        one.guard()


@pytest.mark.both_servers
def test_a_newer_try_of_a_partition_stops_the_older_one_at_its_next_batch(lk: Linkage, db: Database) -> None:
    empty_app(db)
    run_id, _ = start_run(lk, MigrationParams(), "test")
    first = claimed(lk, run_id, "order_delivery", "link", 1, "worker-1:41:try 1")
    with lk.hold(run_id), first:
        lk.guard()
        with claimed(lk, run_id, "order_delivery", "link", 2, "worker-1:42:try 1"):
            lk.guard()  # another partition's claim is its own
        with claimed(lk, run_id, "order_delivery", "link", 1, "worker-2:7:try 2"):
            with pytest.raises(LockLostError, match="partition 1 of order_delivery/link .* taken over by a newer"):
                lk.guard()  # the older try's guard is still held alongside: it fails
        with pytest.raises(LockLostError, match="partition 1 of order_delivery/link .* taken over by a newer try"):
            lk.app.delivery_statuses.update_one({"_id": 1}, {"$set": {"order_id": "x"}})  # any write, guarded
