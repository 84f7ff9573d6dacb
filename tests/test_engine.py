"""The engine's walk: batches by join key, partitions, and the candidate read of migration 002."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from linkage import pipeline
from linkage.engine import by_string, not_by_string, pages, split, where
from linkage.models import MigrationParams, Step
from linkage.steps.order_delivery import candidate_orders


def test_keyed_batches_never_split_a_customer_and_leave_non_strings_out() -> None:
    docs = [{"_id": i, "customer_id": c} for i, c in enumerate(["a", "a", "a", ["a"], "b", "c", "c", None, "d"])]
    batches = [[d["customer_id"] for d in page] for page in pages(iter(docs), 2, "customer_id")]
    assert batches == [["a", "a", "a"], ["b", "c", "c"], ["d"]]
    assert [len(page) for page in pages(iter(docs), 4)] == [4, 4, 1]  # plain chunks by `_id`


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


def test_a_sparse_batch_reads_its_customers_orders_not_the_range_between_them(
        lk: pipeline.Linkage, db: Database) -> None:
    between = [{"id": f"m{i}", "customer_id": f"m{i:03d}", "delivery_date": "2026-03-01", "status": "delivered"}
               for i in range(50)]
    ends = [{"id": f"o{c}", "customer_id": c, "delivery_date": "2026-03-01", "status": "delivered"} for c in "az"]
    db.orders.insert_many(between + ends)
    assert {o["id"] for o in candidate_orders(db.orders, ["a", "z"], limit=8)} == {"oa", "oz"}
    assert len(candidate_orders(db.orders, ["a", "z"], limit=100)) == 52  # dense enough: the range, read once

    db.delivery_statuses.insert_many([{"id": f"d{c}", "customer_id": c, "delivery_date": "2026-03-01"} for c in "az"])
    result = pipeline.migrate(lk, MigrationParams(steps=[Step.ORDER_DELIVERY], min_order_coverage=0), "test")
    assert result["steps"]["order_delivery"]["linked"] == 2
    assert {d["id"]: d["order_id"] for d in db.delivery_statuses.find()} == {"da": "oa", "dz": "oz"}
