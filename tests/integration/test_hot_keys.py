"""Issue 29 point 3: a key shared by many documents is split across batches, in bounded memory, exactly.

The user-customer `resolve` phase walks its proposals likewise: a profile many accounts claim is a
conflict for each, decided batch by batch.

One customer's deliveries (a shared guest account) are walked in (customer_id, _id) order, so a batch
closes at `batch_size` inside the key and the checkpoint is the pair; each batch reads only the orders
its days could match. The decisions must be exactly the oracle's whatever the batch size, with the
hot customer's orders stored in every representation `normalize_date` reads, and a run stopped inside
the key must resume to exactly the uninterrupted run's data.
"""

from __future__ import annotations

import random
import sys
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from bson import Int64, ObjectId
from pymongo.database import Database

from linkage.core.models import CANDIDATE_CAP, RunState
from linkage.engine.partitions import Partition
from linkage.engine.passes import pages
from linkage.mongo.lookups import DENSE_PER_KEY
from linkage.relations import order_delivery
from linkage.relations.order_delivery.day_query import SPACE_LEADS
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate

from helpers import empty_app, snapshot
from oracle import expected_order_links, expected_user_links

pytestmark = pytest.mark.both_servers
HOT, DAYS, FIRST = "guest", 90, date(2026, 3, 1)


def test_a_walk_with_a_tiebreak_cuts_inside_a_key_and_still_leaves_non_strings_out() -> None:
    docs = [{"_id": i, "customer_id": c} for i, c in enumerate(["a", "h", "h", "h", "h", "h", 7, "h", "z"])]
    cut = [[d["_id"] for d in page] for page in pages(iter(docs), 3, "customer_id", within_keys=True)]
    assert cut == [[0, 1, 2], [3, 4, 5], [7, 8]]
    whole = [[d["_id"] for d in page] for page in pages(iter(docs), 3, "customer_id")]
    assert whole == [[0, 1, 2, 3, 4, 5, 7], [8]]  # without one, a key is never split


def test_the_whitespace_led_reads_hold_every_character_strip_removes_and_no_digit() -> None:
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert all(any(low <= c < high for low, high in SPACE_LEADS) for c in spaces)
    assert not any(low <= digit < high for low, high in SPACE_LEADS for digit in "0123456789")


def test_a_resume_inside_a_key_whose_ids_are_of_every_type_skips_nothing_and_repeats_nothing(
        request: pytest.FixtureRequest, db: Database) -> None:
    """After each document, the partition's bounds from that position read exactly the documents after it,
    whatever the type of its `_id` (a `$gt` alone is type-bracketed and would skip the later types)."""
    if request.node.callspec.params["wire_server"] == "nx":
        pytest.skip("nx sorts BSON types in an order of its own (CONTRACT §8): the app's `_id`s are ObjectIds")
    ids: list[Any] = [1, Int64(2), 2.5, "a", "b", {"x": 1}, b"\x01", ObjectId(), ObjectId(), True,
                      datetime(2026, 1, 1)]
    db.walked.create_index([("customer_id", 1), ("_id", 1)])
    db.walked.insert_many([{"_id": i, "customer_id": HOT} for i in ids] +
                          [{"_id": ObjectId(), "customer_id": c} for c in ("a", "b", "y", "z")])
    order = [("customer_id", 1), ("_id", 1)]
    part = Partition(index=0, lo="a", hi="y")  # (a, y]: b, guest, y
    walked = [(d["customer_id"], d["_id"]) for d in db.walked.find(part.bounds("customer_id")).sort(order)]
    assert [c for c, _ in walked] == ["b", *[HOT] * len(ids), "y"]
    for at, position in enumerate(walked):
        rest = db.walked.find(part.bounds("customer_id", list(position), "_id")).sort(order)
        assert [(d["customer_id"], d["_id"]) for d in rest] == walked[at + 1:], position
    # a checkpoint written before the tiebreak (a whole key) still resumes after that key
    assert [d["customer_id"] for d in db.walked.find(part.bounds("customer_id", HOT, "_id"))] == ["y"]


def _day_values(day: date, shift: int) -> list[Any]:
    """`day` in each representation `normalize_date` reads as it (Asia/Kolkata), picked by `shift`."""
    before, after = day - timedelta(days=1), day + timedelta(days=1)
    forms = [
        day.isoformat(), f"  {day.isoformat()} ", f"\u3000{day.isoformat()}", f"{day.isoformat()}T10:15",
        f"{day.isoformat()} 23:59:59", f"{before.isoformat()}T23:30:00-05:00",  # 04:30Z: 10:00 in Kolkata
        f"{after.isoformat()}T00:30+14:00",  # the day before in UTC: 16:00 in Kolkata
        datetime(day.year, day.month, day.day) - timedelta(hours=5, minutes=30),  # midnight in Kolkata
        datetime(day.year, day.month, day.day, 18, 29),  # 23:59 in Kolkata
    ]
    return [forms[shift % len(forms)]]


def hot_data(db: Database, deliveries: int, seed: int) -> None:
    """A hot customer between two quiet ones: deliveries over DAYS days, each day 0, 1 or 2 candidate orders
    in every representation, plus orders that must not count (cancelled, another day's near misses)."""
    rng = random.Random(seed)
    days = [FIRST + timedelta(days=i) for i in range(DAYS)]
    orders, n = [], 0
    for i, day in enumerate(days):
        for _ in range(i % 3):  # 0, 1 or 2 live orders that day
            orders.append({"id": f"o{n}", "customer_id": HOT, "delivery_date": _day_values(day, n)[0],
                           "status": "delivered"})
            n += 1
        orders.append({"id": f"x{i}", "customer_id": HOT, "delivery_date": day.isoformat(), "status": "cancelled"})
        orders.append({"id": f"m{i}", "customer_id": HOT, "status": "delivered",  # the day after, at 00:01 there
                       "delivery_date": datetime(day.year, day.month, day.day, 18, 31)})
    orders += [{"id": f"q{c}", "customer_id": c, "delivery_date": FIRST.isoformat(), "status": "delivered"}
               for c in ("aaron", "zoe")]
    rng.shuffle(orders)
    dels = [{"id": f"d{k}", "customer_id": HOT, "delivery_date": _day_values(rng.choice(days), rng.randrange(9))[0]}
            for k in range(deliveries)]
    dels += [{"id": f"d-{c}", "customer_id": c, "delivery_date": FIRST.isoformat()} for c in ("aaron", "zoe")]
    db.orders.insert_many(orders)
    db.delivery_statuses.insert_many(dels)
    empty_app(db)


def params(batch_size: int) -> MigrationParams:
    return MigrationParams(steps=["order_delivery"], batch_size=batch_size, min_order_coverage=0)


def test_a_hot_key_split_into_small_batches_links_exactly_what_the_oracle_and_one_big_batch_do(
        lk: Linkage, db: Database) -> None:
    hot_data(db, deliveries=230, seed=3)
    before = snapshot(db)
    truth = expected_order_links(list(before["delivery_statuses"].values()), list(before["orders"].values()))
    assert 60 < len(truth) < 200  # the data has links, ambiguities and misses alike
    assert db.orders.count_documents({"customer_id": HOT}) > DENSE_PER_KEY * 50  # too many to read per batch

    small = migrate(lk, params(50), "test")
    assert small.state == RunState.SUCCEEDED
    journal = list(lk.journal.coll.find({"run_id": small.run_id, "phase": "link"}, {"last_key": 1, "counts": 1}))
    inside = [j["last_key"] for j in journal if isinstance(j["last_key"], list) and j["last_key"][0] == HOT]
    assert len(journal) == 5 and len(inside) == 4  # 232 deliveries: four batches end inside the hot key
    assert all(sum(j["counts"].values()) <= 50 for j in journal)
    linked = {d["_id"]: d["order_id"] for d in db.delivery_statuses.find({"order_id": {"$type": "string"}})}
    assert linked == truth

    db.delivery_statuses.update_many({}, {"$unset": {"order_id": ""}})
    big = migrate(lk, params(10_000), "test", new=True)
    assert {d["_id"]: d["order_id"] for d in db.delivery_statuses.find({"order_id": {"$type": "string"}})} == truth
    assert big.steps == small.steps


def test_a_run_stopped_inside_the_hot_key_resumes_to_exactly_the_uninterrupted_run(
        lk: Linkage, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    hot_data(db, deliveries=180, seed=4)
    before = snapshot(db)
    truth = expected_order_links(list(before["delivery_statuses"].values()), list(before["orders"].values()))
    planner, planned = order_delivery.plan_batch, []

    def dies_at_the_fourth(*args: Any, **kwargs: Any) -> Any:
        planned.append(1)
        if len(planned) == 4:
            raise RuntimeError("killed inside the hot key")
        return planner(*args, **kwargs)

    monkeypatch.setattr(order_delivery, "plan_batch", dies_at_the_fourth)
    with pytest.raises(RuntimeError, match="killed inside the hot key"):
        migrate(lk, params(40), "test")
    stopped = lk.journal.last(lk.runs.coll.find_one()["_id"], "order_delivery", "link", 0)
    assert stopped is not None and stopped.seq == 2 and stopped.last_key[0] == HOT

    monkeypatch.setattr(order_delivery, "plan_batch", planner)
    resumed = migrate(lk, params(40), "test")
    assert resumed.state == RunState.SUCCEEDED and resumed.run_id == stopped.run_id
    linked = {d["_id"]: d["order_id"] for d in db.delivery_statuses.find({"order_id": {"$type": "string"}})}
    assert linked == truth
    assert sum(resumed.steps["order_delivery"].values()) == len(before["delivery_statuses"])


def test_a_customer_proposed_to_a_crowd_is_split_across_batches_and_each_claimant_is_a_conflict(
        lk: Linkage, db: Database) -> None:
    """One phone shared by 60 accounts and one profile (a placeholder number), beside profiles claimed by one
    account or two: the resolve phase walks (customer, user) in batches of 7, so the crowd and some of the
    pairs are split across batches; every claimant of a shared profile is a conflict naming at most
    CANDIDATE_CAP others, and the links are exactly the oracle's."""
    customers = [{"id": f"k{i}", "phone": f"9{i:09d}", "status": "active"} for i in range(30)]
    customers.append({"id": "k-shared", "phone": "9999999999", "status": "active"})
    users = [{"id": f"u{i}", "role": "customer", "phone": f"+91 9{i:09d}"} for i in range(30)]
    users += [{"id": f"u{i}b", "role": "customer", "phone": f"0{9:01d}{i:09d}"} for i in range(0, 30, 3)]
    users += [{"id": f"crowd{i}", "role": "customer", "phone": "+91 99999 99999"} for i in range(60)]
    db.customers_v2.insert_many(customers)
    db.users.insert_many(users)
    empty_app(db)
    truth = expected_user_links(list(db.users.find()), list(db.customers_v2.find()))
    assert len(truth) == 20  # the 20 profiles claimed by one account; the 10 pairs and the crowd conflict

    report = migrate(lk, MigrationParams(steps=["user_customer"], batch_size=7, min_user_coverage=0), "test")
    assert report.state == RunState.SUCCEEDED and report.steps["user_customer"]["conflict"] == 20 + 60
    linked = {u["_id"]: u["customer_v2_id"] for u in db.users.find({"customer_v2_id": {"$type": "string"}})}
    assert linked == truth
    review = lk.settings.collection("review")
    holders = {i["document_id"]: [h["id"] for h in i["holders"]] for i in db[review].find({"category": "conflict"})}
    assert all(len(holders[f"crowd{i}"]) == CANDIDATE_CAP and f"crowd{i}" not in holders[f"crowd{i}"]
               for i in range(60))
    assert all(holders[f"u{i}"] == [f"u{i}b"] and holders[f"u{i}b"] == [f"u{i}"] for i in range(0, 30, 3))
