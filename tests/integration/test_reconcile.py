"""The nightly reconciliation over time: six nights of live app drift, each night a dry run then the real run.

Two databases get the same seed and the same app writes every day. The main one
gets a dry-run reconcile before each real one; the control only the real one. A
dry run must leave the app data and the review queue as they were, and "dry run,
then real run" must end exactly as "real run" alone. Every night the data is
checked whole against the independent oracle (`tests/oracle.py`), so every
expectation of every earlier night is checked again. Every other night the
reconcile is rolled back (restoring exactly the data it found) and run again.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from linkage.core.models import RunKind
from linkage.core.settings import Settings
from linkage.dev.seed import seed
from linkage.dev.server import EmbeddedServer
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate, undo_run

from helpers import app_quiet, by_app_id, snapshot
from oracle import expected_links, links

NIGHTS = 6
PARAMS = MigrationParams(batch_size=50, min_order_coverage=0.5, min_user_coverage=0.5)


@dataclass
class Day:
    """What the app did on one day, and what the night must make of it (by application id)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)  # (user id, customer id) the night must link
    single: list[tuple[str, str]] = field(default_factory=list)  # (delivery id, its only order)
    ambiguous: list[str] = field(default_factory=list)  # deliveries that must stay unlinked
    hand_linked: tuple[str, str] = ("", "")  # (delivery id, the order the app chose): kept
    one_sided: list[tuple[str, str]] = field(default_factory=list)  # (user id, customer id) to complete
    deleted_order: tuple[str, str] = ("", "")  # (delivery id naming it, order id): drift
    deleted_user: tuple[str, str] = ("", "")  # (customer id naming them, user id): drift


def app_writes(db: Database, night: int, rng: random.Random) -> Day:
    """One day of the live app, written straight to the database (the same on both databases)."""
    day, tag = Day(), f"n{night}"
    date = f"2026-07-{night + 1:02d}"
    for i in range(3):  # new accounts and profiles, phones in different shapes on each side
        digits = f"9{night}{i}{rng.randrange(10**6, 10**7)}"
        db.customers_v2.insert_one({"id": f"{tag}-c{i}", "phone": f"+91 {digits[:5]} {digits[5:]}", "name": "New"})
        db.users.insert_one({"id": f"{tag}-u{i}", "role": "customer", "phone": int(digits),
                             "email": f"  {tag}.u{i}@Example.com "})
        day.pairs.append((f"{tag}-u{i}", f"{tag}-c{i}"))
    for i in range(3):  # deliveries with exactly one live order (a cancelled one beside it)
        db.orders.insert_many([{"id": f"{tag}-o{i}", "customer_id": f"{tag}-k{i}", "delivery_date": date,
                                "status": "delivered"},
                               {"id": f"{tag}-x{i}", "customer_id": f"{tag}-k{i}", "delivery_date": date,
                                "status": "cancelled"}])
        db.delivery_statuses.insert_one({"id": f"{tag}-d{i}", "customer_id": f"{tag}-k{i}",
                                         "delivery_date": f"{date}T10:00:00+05:30"})
        day.single.append((f"{tag}-d{i}", f"{tag}-o{i}"))
    for i in range(3):  # ambiguous: two live orders that day; the app links the last one by hand
        db.orders.insert_many([{"id": f"{tag}-a{i}{j}", "customer_id": f"{tag}-amb{i}", "delivery_date": date,
                                "status": "confirmed"} for j in range(2)])
        db.delivery_statuses.insert_one({"id": f"{tag}-ad{i}", "customer_id": f"{tag}-amb{i}", "delivery_date": date})
        day.ambiguous.append(f"{tag}-ad{i}")
    hand = day.ambiguous.pop()
    db.delivery_statuses.update_one({"id": hand}, {"$set": {"order_id": f"{tag}-a21"}})
    day.hand_linked = (hand, f"{tag}-a21")
    # one-sided links the app wrote, in both directions
    db.customers_v2.insert_one({"id": f"{tag}-oc0", "phone": "5000000000"})
    db.users.insert_one({"id": f"{tag}-ou0", "role": "customer", "phone": "4000000000", "customer_v2_id": f"{tag}-oc0"})
    db.customers_v2.insert_one({"id": f"{tag}-oc1", "phone": "5000000001", "user_id": f"{tag}-ou1"})
    db.users.insert_one({"id": f"{tag}-ou1", "role": "customer", "phone": "4000000001", "customer_v2_id": ""})
    day.one_sided = [(f"{tag}-ou0", f"{tag}-oc0"), (f"{tag}-ou1", f"{tag}-oc1")]
    # the app deletes an order a linked delivery names, and a user a customer names
    order_ids = {o.get("id") for o in db.orders.find({}, {"id": 1})}
    linked = sorted(d["id"] for d in db.delivery_statuses.find({"order_id": {"$gt": ""}}, {"id": 1, "order_id": 1})
                    if isinstance(d.get("id"), str) and d.get("order_id") in order_ids)
    delivery = db.delivery_statuses.find_one({"id": rng.choice(linked)})
    db.orders.delete_one({"id": delivery["order_id"]})
    day.deleted_order = (delivery["id"], delivery["order_id"])
    user_ids = Counter(u.get("id") for u in db.users.find({}, {"id": 1}))
    named = sorted(c["id"] for c in db.customers_v2.find({"user_id": {"$gt": ""}}, {"id": 1, "user_id": 1})
                   if isinstance(c.get("id"), str) and user_ids[c.get("user_id")] == 1)
    customer = db.customers_v2.find_one({"id": rng.choice(named)})
    db.users.delete_one({"id": customer["user_id"]})
    day.deleted_user = (customer["id"], customer["user_id"])
    return day


def queue(lk: Linkage) -> list[tuple]:
    """The review queue by what a person sees (no ObjectIds, which differ between the two databases)."""
    return sorted((i["step"], i["collection"], str(i["document_id"]), i["category"], i["reason"], i["status"],
                   str([c["id"] for c in i["candidates"]]), str(i["holders"]), str(i["missing"]))
                  for i in lk.reviews.coll.find())


def by_id(db: Database, collection: str, app_id: str) -> dict[str, Any]:
    return db[collection].find_one({"id": app_id}) or {}


@pytest.fixture
def nightly(wire_server: EmbeddedServer, client: MongoClient, db_name: str,
            tmp_path: Path) -> Iterator[tuple[Linkage, Linkage]]:
    """The main database and its control, seeded alike and migrated once."""
    handles = []
    for name in (db_name, f"{db_name}_ctl"):
        client.drop_database(name)
        seed(client[name], customers=300, seed_value=29)
        lk = Linkage(Settings(mongo_uri=wire_server.uri, db=name, home=tmp_path / name,
                              app_quiet=app_quiet(wire_server)), client)
        assert migrate(lk, PARAMS, "day 0").state == "succeeded"
        handles.append(lk)
    yield handles[0], handles[1]
    for lk in handles:
        client.drop_database(lk.db.name)


def reconcile(lk: Linkage, *, dry_run: bool = False) -> dict[str, Any]:
    """A nightly run's report as `linkage reconcile --json` prints it."""
    return migrate(lk, PARAMS.model_copy(update={"dry_run": dry_run}), "nightly", kind=RunKind.RECONCILE,
                   new=True).as_json()


@pytest.mark.slow
@pytest.mark.both_servers
@pytest.mark.timeout(900)
def test_six_nights_of_app_drift_each_with_a_dry_run_then_the_real_run(
        nightly: tuple[Linkage, Linkage]) -> None:
    lk, control = nightly
    db = lk.db
    days: list[Day] = []
    for night in range(1, NIGHTS + 1):
        day = app_writes(db, night, random.Random(night))
        assert app_writes(control.db, night, random.Random(night)) == day
        days.append(day)

        before, before_queue = snapshot(db), queue(lk)
        dry = reconcile(lk, dry_run=True)
        assert dry["state"] == "succeeded" and dry["dry_run"]
        assert snapshot(db) == before and queue(lk) == before_queue, f"night {night}: the dry run wrote"
        assert dry["drift"]["total"] > 0  # what it found is in its own record

        real = reconcile(lk)
        alone = reconcile(control)
        assert real["state"] == alone["state"] == "succeeded", (night, real["error"], real["validation"]["failed"])
        assert real["steps"] == alone["steps"] == dry["steps"], f"night {night}: the dry run changed the counts"
        assert by_app_id(db) == by_app_id(control.db) and queue(lk) == queue(control)
        assert real["validation"]["success"] and real["drift"]["by_expectation"]["order_refs_dangling"] >= 1
        assert real["drift"]["by_expectation"]["customer_refs_dangling"] >= 1
        assert lk.alerts.coll.count_documents({"run_id": real["run_id"], "event": "drift_found"}) == 1
        assert links(db) == expected_links(before), f"night {night}: a link the oracle does not expect"
        for earlier in days:  # this night's expectations, and every earlier night's, still hold
            check_day(lk, earlier)

        if night % 2 == 0:  # roll the night back: exactly the data it found; then the same night again
            after = snapshot(db)
            undone = undo_run(lk, real["run_id"])
            assert undone.kept == 0 and snapshot(db) == before
            again = reconcile(lk)
            assert again["state"] == "succeeded" and again["steps"] == real["steps"]
            assert snapshot(db) == after


def check_day(lk: Linkage, day: Day) -> None:
    db = lk.db
    for user_id, customer_id in day.pairs + day.one_sided:
        assert by_id(db, "users", user_id).get("customer_v2_id") == customer_id, user_id
        assert by_id(db, "customers_v2", customer_id).get("user_id") == user_id, customer_id
    for delivery, order in day.single:
        assert by_id(db, "delivery_statuses", delivery).get("order_id") == order
    for delivery in day.ambiguous:
        assert by_id(db, "delivery_statuses", delivery).get("order_id") is None
        assert open_item(lk, "delivery_statuses", delivery)["category"] == "ambiguous"
    assert by_id(db, "delivery_statuses", day.hand_linked[0])["order_id"] == day.hand_linked[1]
    delivery, order = day.deleted_order
    assert by_id(db, "delivery_statuses", delivery)["order_id"] == order  # drift is reported, never "fixed"
    assert open_item(lk, "delivery_statuses", delivery)["category"] == "dangling"
    customer, user = day.deleted_user
    assert by_id(db, "customers_v2", customer)["user_id"] == user
    assert open_item(lk, "customers_v2", customer)["category"] == "dangling"


def open_item(lk: Linkage, collection: str, app_id: str) -> dict[str, Any]:
    item = lk.reviews.coll.find_one({"collection": collection, "document_id": app_id, "status": "open"})
    assert item is not None, f"no open review item for {collection} {app_id}"
    return item
