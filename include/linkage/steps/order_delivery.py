"""Migration 002: set `delivery_statuses.order_id` where SPEC §3 justifies it."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from pymongo.database import Database

from linkage.engine import BatchPlan, Pass
from linkage.journal import UNSET_VALUES, FieldWrite
from linkage.matching.order_delivery import classify_delivery, delivery_key, index_orders
from linkage.models import Category, Step
from linkage.normalize import is_key, is_unset

DELIVERIES, ORDERS = "delivery_statuses", "orders"
LINK_FIELD = "order_id"
_DELIVERY_FIELDS = {"id": 1, "customer_id": 1, "delivery_date": 1, LINK_FIELD: 1}
_ORDER_FIELDS = {"id": 1, "customer_id": 1, "delivery_date": 1, "status": 1}


def plan_batch(db: Database, tz: ZoneInfo, batch: list[dict[str, Any]]) -> BatchPlan:
    """Decide a page of delivery statuses with two indexed look-ups in all."""
    unset = [d for d in batch if is_unset(d.get(LINK_FIELD))]
    customer_ids = list({k[0] for d in unset if isinstance(k := delivery_key(d, tz), tuple)})
    candidates = index_orders(db[ORDERS].find({"customer_id": {"$in": customer_ids}}, _ORDER_FIELDS), tz) if customer_ids else {}
    linked_ids = list({d[LINK_FIELD] for d in batch if is_key(d.get(LINK_FIELD))})
    existing = {o["id"] for o in db[ORDERS].find({"id": {"$in": linked_ids}}, {"id": 1}) if is_key(o.get("id"))} if linked_ids else set()
    decisions = [classify_delivery(doc, tz, candidates, existing) for doc in batch]
    originals = {doc["_id"]: doc for doc in batch}
    writes = [
        FieldWrite(coll=DELIVERIES, oid=d.oid, field=LINK_FIELD, new=d.link,
                   old=originals[d.oid].get(LINK_FIELD), had=LINK_FIELD in originals[d.oid], group=str(d.oid))
        for d in decisions if d.category == Category.LINKED and d.link
    ]
    return BatchPlan(decisions=decisions, writes=writes)


def backfill_pass(db: Database, tz: ZoneInfo, *, only_unlinked: bool = False) -> Pass:
    """The pass over every delivery status (or, for reconciliation, the unlinked ones)."""
    query = {LINK_FIELD: {"$in": UNSET_VALUES}} if only_unlinked else {}
    return Pass(step=Step.ORDER_DELIVERY, phase="link", source=db[DELIVERIES], query=query,
                projection=_DELIVERY_FIELDS, plan=lambda batch: plan_batch(db, tz, batch),
                subject=DELIVERIES, unlanded=Category.ALREADY_LINKED)
