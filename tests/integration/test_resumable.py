"""A pass whose cursor the server ends goes on after its last batch: nothing skipped, nothing twice.

The cursor of the order-delivery pass (walked in `(customer_id, _id)` order: a batch closes at its
size, inside a customer or not) is killed every third `getMore`, from another connection. Where the server
answers a killed cursor's next `getMore` with CursorNotFound (MongoDB, FerretDB) the kill is real;
nx instead ends a killed cursor as if the data had ended, which no client can tell from the end, so
there the same `getMore`s are followed by a CursorNotFound raised in the client (the only injection).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from pymongo.database import Database
from pymongo.errors import CursorNotFound
from pymongo.synchronous.cursor import Cursor

from linkage.relations import checks
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.apply import apply_planned
from linkage.stages.backfill import run_step
from linkage.stages.rollback import rollback

from helpers import empty_app

pytestmark = pytest.mark.both_servers
KILL_EVERY, KILLS = 3, 4


def kill_raises(uri: str, db: Database) -> bool:
    """Whether a cursor killed from another connection fails its next getMore on this server."""
    db.kill_probe.insert_many([{"i": i} for i in range(30)])
    cursor = db.kill_probe.find().batch_size(10)
    next(cursor)
    other: MongoClient = MongoClient(uri)
    try:
        other[db.name].command("killCursors", "kill_probe", cursors=[cursor.cursor_id])
        list(cursor)
        return False
    except CursorNotFound:
        return True
    finally:
        other.close()
        db.kill_probe.drop()


class Killer(monitoring.CommandListener):
    """Kills the cursor on `target` (`delivery_statuses` unless a test says) after every KILL_EVERY-th getMore,
    KILLS times."""

    def __init__(self, uri: str, db_name: str, real: bool) -> None:
        self.other: MongoClient = MongoClient(uri)
        self.db_name, self.real, self.target = db_name, real, "delivery_statuses"
        self.collections: dict[int, str] = {}
        self.get_mores = 0
        self.killed: list[int] = []
        self.pending: set[int] = set()  # nx: cursors whose next read raises in the client

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "getMore":
            self.collections[event.request_id] = event.command.get("collection", "")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.collections.pop(event.request_id, None) != self.target:
            return
        self.get_mores += 1
        cursor_id = event.reply["cursor"]["id"]
        if cursor_id and self.get_mores % KILL_EVERY == 0 and len(self.killed) < KILLS:
            self.killed.append(cursor_id)
            if self.real:
                self.other[self.db_name].command("killCursors", self.target, cursors=[cursor_id])
            else:
                self.pending.add(cursor_id)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.collections.pop(event.request_id, None)


@pytest.fixture
def killer(wire_server: Any, db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Killer]:
    real = kill_raises(wire_server.uri, db)
    killer = Killer(wire_server.uri, db.name, real)
    if not real:
        original = Cursor.next

        def next_or_killed(self: Cursor) -> Any:
            if self.cursor_id in killer.pending:
                killer.pending.discard(self.cursor_id)
                self.close()
                raise CursorNotFound(f"cursor id {self.cursor_id} not found", 43)
            return original(self)

        monkeypatch.setattr(Cursor, "next", next_or_killed)
        monkeypatch.setattr(Cursor, "__next__", next_or_killed)
    yield killer
    killer.other.close()


def planted(db: Database, customers: int = 60) -> list[dict[str, Any]]:
    """1 to 4 deliveries a customer, each with its one order that day: every delivery links."""
    orders, deliveries = [], []
    for c in range(customers):
        for d in range(1 + c % 4):
            day = f"2026-03-{d + 1:02d}"
            orders.append({"id": f"o{c}-{d}", "customer_id": f"k{c:03d}", "delivery_date": day, "status": "delivered"})
            deliveries.append({"id": f"d{c}-{d}", "customer_id": f"k{c:03d}", "delivery_date": day})
    db.orders.insert_many(orders)
    db.delivery_statuses.insert_many(deliveries)
    return deliveries


def test_a_pass_whose_cursor_is_killed_goes_on_after_its_last_batch(
        wire_server: Any, db: Database, killer: Killer, settings: Any, record_property: Any) -> None:
    deliveries = planted(db)
    client: MongoClient = MongoClient(wire_server.uri, event_listeners=[killer])
    try:
        lk = Linkage(settings, client)
        run_id, _ = start_run(lk, MigrationParams(steps=["order_delivery"], batch_size=7), "test")
        with lk.hold(run_id):
            counts = run_step(lk, run_id, "order_delivery")  # the pass, not validation
            apply_planned(lk, run_id)
        batches = sorted(lk.journal.records(run_id), key=lambda r: (r.phase, r.partition, r.seq))
    finally:
        client.close()
    record_property("kills", f"{len(killer.killed)} ({'killCursors' if killer.real else 'in the client'})")
    assert len(killer.killed) == KILLS
    assert counts["linked"] == len(deliveries)
    assert {d["id"]: d["order_id"] for d in db.delivery_statuses.find()} == {
        d["id"]: "o" + d["id"][1:] for d in deliveries}
    link = [r for r in batches if r.phase == "link"]
    assert [r.seq for r in link] == list(range(len(link)))  # no batch skipped
    keys = [tuple(r.last_key) for r in link]  # (customer_id, _id): a batch may end inside a customer
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # none handed out twice
    assert sum(sum(r.counts.values()) for r in link) == len(deliveries)


def test_a_rollback_whose_journal_cursor_is_killed_undoes_every_batch_exactly_once(
        wire_server: Any, db: Database, killer: Killer, settings: Any) -> None:
    """The rollback reads the journal newest first, 16 batches a getMore; its cursor is killed 4 times and
    every batch is reverted once: each restored, none `already` (a batch reverted twice would count so).
    The batches are given one `at` in threes, so the read reopens among ties."""
    deliveries = planted(empty_app(db), customers=300)  # a batch a customer: 300 batches, 19 getMores
    killer.target = "none yet"
    client: MongoClient = MongoClient(wire_server.uri, event_listeners=[killer])
    try:
        lk = Linkage(settings, client)
        run_id, _ = start_run(lk, MigrationParams(steps=["order_delivery"], batch_size=1), "test")
        with lk.hold(run_id):
            run_step(lk, run_id, "order_delivery")
            apply_planned(lk, run_id)
            assert db.delivery_statuses.count_documents({"order_id": {"$gt": ""}}) == len(deliveries)
            journal = db[settings.collection("journal")]
            batches = list(journal.find({}, {"at": 1}).sort("at", 1))
            for n, batch in enumerate(batches):  # in threes, so a getMore of 16 ends among ties
                journal.update_one({"_id": batch["_id"]}, {"$set": {"at": batches[n - n % 3]["at"]}})
            killer.target = journal.name
            outcome = rollback(lk, run_id)
    finally:
        client.close()
    assert len(killer.killed) == KILLS
    assert (outcome.restored, outcome.already, outcome.kept) == (len(deliveries), 0, 0)
    assert db.delivery_statuses.count_documents({"order_id": {"$exists": True}}) == 0


def test_a_validation_walk_whose_cursor_is_killed_counts_every_link_once(
        wire_server: Any, db: Database, killer: Killer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk over the deliveries' `order_id`s (validation's), 10 a chunk, killed 4 times: every linked
    delivery in exactly one chunk, the chunks in order, no `order_id` split between two."""
    monkeypatch.setattr(checks, "CHUNK", 10)
    db.delivery_statuses.insert_many([{"n": n, "order_id": f"o{n // 3:03d}"} for n in range(300)]
                                     + [{"n": -1}, {"n": -2, "order_id": ""}])
    client: MongoClient = MongoClient(wire_server.uri, event_listeners=[killer])
    try:
        chunks = list(checks.link_walk(client[db.name], "delivery_statuses", "order_id", {"n": 1, "order_id": 1}))
    finally:
        client.close()
    assert len(killer.killed) == KILLS
    assert sorted(d["n"] for chunk in chunks for d in chunk) == list(range(300))
    values = [[d["order_id"] for d in chunk] for chunk in chunks]
    assert [v for chunk in values for v in chunk] == sorted(v for chunk in values for v in chunk)
    assert all(a[-1] != b[0] for a, b in zip(values, values[1:], strict=False))


def test_a_walk_of_every_set_value_notes_a_stray_and_a_resumed_one_cannot_rule_one_out(
        wire_server: Any, db: Database, killer: Killer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation's order walk reads every set `order_id` so that the scan for values that are not a single
    string runs only when there is one: its chunks hold the link values alone, it notes the one number among
    them, and a walk the server ended says it met one (its rest reads link values only)."""
    monkeypatch.setattr(checks, "CHUNK", 10)
    db.delivery_statuses.insert_many([{"n": n, "order_id": f"o{n // 3:03d}"} for n in range(300)]
                                     + [{"n": -1}, {"n": -2, "order_id": ""}, {"n": -3, "order_id": None}])

    def walked(client: MongoClient) -> tuple[list[int], bool]:
        strays = checks.Strays()
        chunks = checks.link_walk(client[db.name], "delivery_statuses", "order_id", {"n": 1, "order_id": 1}, strays)
        return sorted(d["n"] for chunk in chunks for d in chunk), strays.met

    plain: MongoClient = MongoClient(wire_server.uri)
    try:
        assert walked(plain) == (list(range(300)), False)  # only strings and unset values: nothing to scan for
        db.delivery_statuses.insert_one({"n": -4, "order_id": 42})
        assert walked(plain) == (list(range(300)), True)
        db.delivery_statuses.delete_one({"n": -4})
    finally:
        plain.close()
    killed: MongoClient = MongoClient(wire_server.uri, event_listeners=[killer])
    try:
        assert walked(killed) == (list(range(300)), True)
    finally:
        killed.close()
    assert len(killer.killed) == KILLS
