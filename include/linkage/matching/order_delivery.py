"""Migration 002: which order a delivery status fulfils."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from linkage.models import Category, Decision
from linkage.normalize import is_key, is_unset, normalize_date

DeliveryKey = tuple[str, date]


def delivery_key(doc: Mapping[str, Any], tz: ZoneInfo) -> DeliveryKey | str:
    """(customer_id, day) a document is matched on, or the reason it cannot be."""
    customer_id = doc.get("customer_id")
    if not is_key(customer_id):
        return "customer_id: missing or not a non-empty string"
    day = normalize_date(doc.get("delivery_date"), tz)
    if day is None:
        return "delivery_date: missing or not a recognisable date"
    return str(customer_id), day


def index_orders(orders: Iterable[Mapping[str, Any]], tz: ZoneInfo) -> dict[DeliveryKey, list[str]]:
    """Candidate order ids by (customer_id, day): not cancelled, with a usable id."""
    by_key: dict[DeliveryKey, list[str]] = {}
    for order in orders:
        if order.get("status") == "cancelled" or not is_key(order.get("id")):
            continue
        key = delivery_key(order, tz)
        if isinstance(key, tuple):
            by_key.setdefault(key, []).append(order["id"])
    return by_key


def classify_delivery(
    doc: Mapping[str, Any],
    tz: ZoneInfo,
    candidates: Mapping[DeliveryKey, list[str]],
    existing_order_ids: Collection[str],
) -> Decision:
    """Decide one delivery status; `candidates` must cover its (customer, day)."""
    base = {"oid": doc["_id"], "app_id": doc.get("id")}
    current = doc.get("order_id")
    if not is_unset(current):
        found = isinstance(current, str) and current in existing_order_ids
        return Decision(**base, category=Category.ALREADY_LINKED if found else Category.DANGLING)
    key = delivery_key(doc, tz)
    if isinstance(key, str):
        return Decision(**base, category=Category.INVALID, reason=key)
    matches = candidates.get(key, [])
    if len(matches) == 1:
        return Decision(**base, category=Category.LINKED, link=matches[0])
    return Decision(**base, category=Category.AMBIGUOUS if matches else Category.UNMATCHED)
