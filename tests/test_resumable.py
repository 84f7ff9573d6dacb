"""A pass whose cursor the server ends goes on after its last batch: nothing skipped, nothing twice.

The cursor of the order-delivery pass (walked in `customer_id` order, so a batch closes only where
the customer changes) is killed every third `getMore`, from another connection. Where the server
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

from linkage.apply import apply_planned
from linkage.backfill import run_step
from linkage.handle import Linkage
from linkage.params import MigrationParams
from linkage.stages import start_run

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
    """Kills the `delivery_statuses` cursor after every KILL_EVERY-th getMore, KILLS times."""

    def __init__(self, uri: str, db_name: str, real: bool) -> None:
        self.other: MongoClient = MongoClient(uri)
        self.db_name, self.real = db_name, real
        self.collections: dict[int, str] = {}
        self.get_mores = 0
        self.killed: list[int] = []
        self.pending: set[int] = set()  # nx: cursors whose next read raises in the client

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "getMore":
            self.collections[event.request_id] = event.command.get("collection", "")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.collections.pop(event.request_id, None) != "delivery_statuses":
            return
        self.get_mores += 1
        cursor_id = event.reply["cursor"]["id"]
        if cursor_id and self.get_mores % KILL_EVERY == 0 and len(self.killed) < KILLS:
            self.killed.append(cursor_id)
            if self.real:
                self.other[self.db_name].command("killCursors", "delivery_statuses", cursors=[cursor_id])
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


def test_a_pass_whose_cursor_is_killed_goes_on_after_its_last_batch(
        wire_server: Any, db: Database, killer: Killer, settings: Any, record_property: Any) -> None:
    deliveries = []
    for c in range(60):  # 1 to 4 deliveries a customer, each with its one order that day
        for d in range(1 + c % 4):
            day = f"2026-03-{d + 1:02d}"
            db.orders.insert_one({"id": f"o{c}-{d}", "customer_id": f"k{c:03d}", "delivery_date": day,
                                  "status": "delivered"})
            deliveries.append({"id": f"d{c}-{d}", "customer_id": f"k{c:03d}", "delivery_date": day})
    db.delivery_statuses.insert_many(deliveries)
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
    keys = [r.last_key for r in link]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # none handed out twice
    assert sum(sum(r.counts.values()) for r in link) == len(deliveries)
