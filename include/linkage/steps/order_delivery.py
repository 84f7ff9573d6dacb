"""Migration 002: set `delivery_statuses.order_id` where SPEC §3 justifies it.

Two passes. `link` walks the delivery statuses in `customer_id` order, so a
batch covers a contiguous run of customers and their candidate orders are one
index range (`orders {customer_id: 1, delivery_date: 1}`), read once per batch:
the backfill stays linear in the collection on every server. `unkeyed` walks the
rest in `_id` order (no string `customer_id`): nothing to link there, only to
count as `invalid`, `already_linked` or `dangling`.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from pymongo.collection import Collection
from pymongo.database import Database

from linkage.engine import ID, BatchPlan, Pass, by_string, not_by_string
from linkage.journal import UNSET_VALUES, FieldWrite
from linkage.matching.order_delivery import classify_delivery, index_orders
from linkage.models import Category, Step
from linkage.normalize import is_key

DELIVERIES, ORDERS = "delivery_statuses", "orders"
LINK_FIELD, CUSTOMER = "order_id", "customer_id"
LINK_PHASE, UNKEYED_PHASE = "link", "unkeyed"
PHASES = [LINK_PHASE, UNKEYED_PHASE]
_DELIVERY_FIELDS = {"id": 1, CUSTOMER: 1, "delivery_date": 1, LINK_FIELD: 1}
_ORDER_FIELDS = {"id": 1, CUSTOMER: 1, "delivery_date": 1, "status": 1}
#: A batch's customer range is read whole while it holds at most this many orders per delivery.
DENSE_ORDERS_PER_DELIVERY = 4


def candidate_orders(orders: Collection, customer_ids: list[str], limit: int) -> list[dict[str, Any]]:
    """Every order of these customers (and maybe of customers between them).

    The batch's customers are contiguous in `customer_id` order, so one index range
    from the first to the last finds their orders. When the range holds more than
    `limit` orders (a reconciliation's unlinked deliveries are sparse), one `$in`
    over the customers is cheaper; memory stays bounded by `limit` either way.
    """
    if not customer_ids:
        return []
    ranged = list(orders.find({CUSTOMER: {"$gte": min(customer_ids), "$lte": max(customer_ids)}}, _ORDER_FIELDS)
                  .limit(limit + 1))
    if len(ranged) <= limit:
        return ranged
    return list(orders.find({CUSTOMER: {"$in": customer_ids}}, _ORDER_FIELDS))


def existing_order_ids(orders: Collection, named: set[str], fetched: list[dict[str, Any]]) -> set[str]:
    """Which of the order ids the batch's links name exist (most are among the orders already read)."""
    found = {o["id"] for o in fetched if is_key(o.get("id")) and o["id"] in named}
    rest = list(named - found)
    if rest:
        found |= {o["id"] for o in orders.find({"id": {"$in": rest}}, {"id": 1}) if is_key(o.get("id"))}
    return found


def plan_batch(db: Database, tz: ZoneInfo, batch: list[dict[str, Any]]) -> BatchPlan:
    """Decide a page of delivery statuses from one read of their customers' orders."""
    customer_ids = list({d[CUSTOMER] for d in batch if is_key(d.get(CUSTOMER))})
    fetched = candidate_orders(db[ORDERS], customer_ids, DENSE_ORDERS_PER_DELIVERY * len(batch))
    named = {d[LINK_FIELD] for d in batch if is_key(d.get(LINK_FIELD))}
    existing = existing_order_ids(db[ORDERS], named, fetched) if named else set()
    candidates = index_orders(fetched, tz)
    decisions = [classify_delivery(doc, tz, candidates, existing) for doc in batch]
    originals = {doc["_id"]: doc for doc in batch}
    writes = [
        FieldWrite(coll=DELIVERIES, oid=d.oid, field=LINK_FIELD, new=d.link,
                   old=originals[d.oid].get(LINK_FIELD), had=LINK_FIELD in originals[d.oid], group=str(d.oid))
        for d in decisions if d.category == Category.LINKED and d.link
    ]
    return BatchPlan(decisions=decisions, writes=writes)


def backfill_pass(db: Database, tz: ZoneInfo, phase: str, *, only_unlinked: bool = False) -> Pass:
    """The pass of one phase over every delivery status (or, for reconciliation, the unlinked ones)."""
    unlinked = {LINK_FIELD: {"$in": UNSET_VALUES}} if only_unlinked else {}
    keyed = phase == LINK_PHASE
    query = {**unlinked, **(by_string(CUSTOMER) if keyed else not_by_string(CUSTOMER))}
    return Pass(step=Step.ORDER_DELIVERY, phase=phase, source=db[DELIVERIES], query=query,
                projection=_DELIVERY_FIELDS, plan=lambda batch: plan_batch(db, tz, batch),
                subject=DELIVERIES, unlanded=Category.ALREADY_LINKED, walk=CUSTOMER if keyed else ID)
