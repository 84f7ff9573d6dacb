"""Migration 002: set `delivery_statuses.order_id` where the rules justify it (CONTRACT §3).

Two passes. `link` walks the delivery statuses in `customer_id` order, so a
batch covers a contiguous run of customers and their candidate orders are one
index range (`orders {customer_id: 1, delivery_date: 1}`), read once per batch:
the backfill stays linear in the collection on every server. `unkeyed` walks the
rest in `_id` order (no string `customer_id`): nothing to link there, only to
count as `invalid`, `already_linked` or `dangling`.

A reconciliation reads only the unlinked delivery statuses (through the
`order_id` index); links the app deleted the order of are found by validation.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.collection import Collection
from pymongo.database import Database

from linkage.app_schema import DELIVERIES, ORDER_LINK, ORDERS, UNSET_VALUES
from linkage.engine import ID, BatchPlan, Pass, by_string, not_by_string
from linkage.journal import FieldWrite
from linkage.lookups import DENSE_PER_KEY, by_keys
from linkage.matching.order_delivery import classify_delivery, index_orders
from linkage.models import Category, RunKind, Step
from linkage.normalize import is_key
from linkage.steps.base import Phase, StepContext, StepSpec

CUSTOMER = "customer_id"
LINK_PHASE, UNKEYED_PHASE = "link", "unkeyed"
_DELIVERY_FIELDS = {"id": 1, CUSTOMER: 1, "delivery_date": 1, ORDER_LINK: 1}
_ORDER_FIELDS = {"id": 1, CUSTOMER: 1, "delivery_date": 1, "status": 1}

def existing_order_ids(orders: Collection, named: set[str], fetched: list[dict[str, Any]]) -> set[str]:
    """Which of the order ids the batch's links name exist (most are among the orders already read)."""
    found = {o["id"] for o in fetched if is_key(o.get("id")) and o["id"] in named}
    rest = list(named - found)
    if rest:
        found |= {o["id"] for o in orders.find({"id": {"$in": rest}}, {"id": 1}) if is_key(o.get("id"))}
    return found


def plan_batch(db: Database, tz: ZoneInfo, batch: list[dict[str, Any]]) -> BatchPlan:
    """Decide a page of delivery statuses from one read of their customers' orders."""
    customer_ids = {d[CUSTOMER] for d in batch if is_key(d.get(CUSTOMER))}
    # the batch's customers are contiguous in the walk: their orders are one index range
    fetched = by_keys(db[ORDERS], CUSTOMER, customer_ids, _ORDER_FIELDS, range_limit=DENSE_PER_KEY * len(batch))
    named = {d[ORDER_LINK] for d in batch if is_key(d.get(ORDER_LINK))}
    existing = existing_order_ids(db[ORDERS], named, fetched) if named else set()
    candidates = index_orders(fetched, tz)
    decisions = [classify_delivery(doc, tz, candidates, existing) for doc in batch]
    originals = {doc[ID]: doc for doc in batch}
    writes = [
        FieldWrite(coll=DELIVERIES, oid=d.oid, field=ORDER_LINK, new=d.link,
                   old=originals[d.oid].get(ORDER_LINK), had=ORDER_LINK in originals[d.oid], group=str(d.oid))
        for d in decisions if d.category == Category.LINKED and d.link
    ]
    return BatchPlan(decisions=decisions, writes=writes)


def _pass(ctx: StepContext, phase: str) -> Pass:
    """The pass of one phase over every delivery status (a reconciliation: the unlinked ones)."""
    unlinked = {ORDER_LINK: {"$in": UNSET_VALUES}} if ctx.kind == RunKind.RECONCILE else {}
    keyed = phase == LINK_PHASE
    query = {**unlinked, **(by_string(CUSTOMER) if keyed else not_by_string(CUSTOMER))}
    return Pass(step=Step.ORDER_DELIVERY, phase=phase, source=ctx.db[DELIVERIES], query=query,
                projection=_DELIVERY_FIELDS, plan=lambda batch: plan_batch(ctx.db, ctx.tz, batch),
                subject=DELIVERIES, unlanded=Category.ALREADY_LINKED, walk=CUSTOMER if keyed else ID)


class OrderDelivery(StepSpec):
    step = Step.ORDER_DELIVERY
    writes = (DELIVERIES,)

    def phases(self, kind: RunKind) -> list[Phase]:
        return [Phase(name, partial(_pass, phase=name)) for name in (LINK_PHASE, UNKEYED_PHASE)]


SPEC = OrderDelivery()
