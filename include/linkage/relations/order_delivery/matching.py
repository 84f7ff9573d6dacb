"""Migration 002: which order a delivery status fulfils."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from linkage.core.comparing import FieldSpec, equal_level, fact, facts
from linkage.core.evidence import Comparison, Level
from linkage.core.models import Candidate, Category, Ruling, listed
from linkage.core.normalize import is_key, is_unset, normalize_date

DeliveryKey = tuple[str, date]
#: Why a delivery with a usable key has no single order: the fields it was matched on.
MATCHED_ON = "customer_id and delivery_date"


def delivery_key(doc: Mapping[str, Any], tz: ZoneInfo) -> DeliveryKey | str:
    """(customer_id, day) a document is matched on, or the reason it cannot be."""
    customer_id = doc.get("customer_id")
    if not is_key(customer_id):
        return "customer_id: missing or not a non-empty string"
    day = normalize_date(doc.get("delivery_date"), tz)
    if day is None:
        return "delivery_date: missing or not a recognisable date"
    return str(customer_id), day


def index_orders(orders: Iterable[Mapping[str, Any]], tz: ZoneInfo) -> dict[DeliveryKey, list[Mapping[str, Any]]]:
    """Candidate orders by (customer_id, day): not cancelled, with a usable id."""
    by_key: dict[DeliveryKey, list[Mapping[str, Any]]] = {}
    for order in orders:
        if order.get("status") == "cancelled" or not is_key(order.get("id")):
            continue
        key = delivery_key(order, tz)
        if isinstance(key, tuple):
            by_key.setdefault(key, []).append(order)
    return by_key


def order_candidate(order: Mapping[str, Any], tz: ZoneInfo) -> Candidate:
    """An order as a person chooses between candidates: its status, day and when it was placed (no PII)."""
    return Candidate.of(str(order["id"]), status=order.get("status"), created_at=order.get("created_at"),
                        delivery_date=normalize_date(order.get("delivery_date"), tz))


def classify_delivery(
    doc: Mapping[str, Any],
    tz: ZoneInfo,
    candidates: Mapping[DeliveryKey, list[Mapping[str, Any]]],
    existing_order_ids: Collection[str],
) -> Ruling:
    """Decide one delivery status; `candidates` must cover its (customer, day). An ambiguous one lists
    the orders it could be (a person decides between them), a dangling one the order it names."""
    base = {"oid": doc["_id"], "app_id": doc.get("id")}
    current = doc.get("order_id")
    if not is_unset(current):
        if isinstance(current, str) and current in existing_order_ids:
            return Ruling(**base, category=Category.ALREADY_LINKED)
        return Ruling(**base, category=Category.DANGLING, reason="order_id: names no existing order",
                        missing=current if isinstance(current, str) else None)
    key = delivery_key(doc, tz)
    if isinstance(key, str):
        return Ruling(**base, category=Category.INVALID, reason=key)
    matches = candidates.get(key, [])
    if len(matches) == 1:
        return Ruling(**base, category=Category.LINKED, link=matches[0]["id"])
    if not matches:
        return Ruling(**base, category=Category.UNMATCHED, reason=f"{MATCHED_ON}: no order of this customer that day")
    return Ruling(**base, category=Category.AMBIGUOUS, reason=f"{MATCHED_ON}: more than one order of this customer "
                    "that day", **listed(order_candidate(order, tz) for order in matches))


# -- evidence: a delivery beside its candidate orders ------------------------------------------------------------

def delivery_time(value: Any, tz: ZoneInfo) -> str | None:
    """The time of day a `delivery_date` carries, in the business timezone (none for a bare day)."""
    if isinstance(value, str) and len(value.strip()) > len("yyyy-mm-dd"):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if not value.tzinfo:
            return f"{value:%H:%M}"
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return f"{aware.astimezone(tz):%H:%M} {tz}"
    return None


def delivery_facts(doc: Mapping[str, Any], tz: ZoneInfo) -> dict[str, str]:
    """A delivery's own facts: its status, the day it was delivered and, when its date carries one, the time."""
    day = normalize_date(doc.get("delivery_date"), tz)
    return facts(status=fact(doc.get("status")), day=day.isoformat() if day else None,
                 time=delivery_time(doc.get("delivery_date"), tz))


def compare_order(delivery: Mapping[str, Any], order: Mapping[str, Any], tz: ZoneInfo) -> list[Comparison]:
    """A candidate order beside the delivery: its customer, its day, its status."""
    customers = [d.get("customer_id") if is_key(d.get("customer_id")) else None for d in (delivery, order)]
    days = [normalize_date(d.get("delivery_date"), tz) for d in (delivery, order)]
    statuses = [d.get("status") if is_key(d.get("status")) else None for d in (delivery, order)]
    return [equal_level("customer", *customers), equal_level("day", *days), equal_level("status", *statuses)]


#: What each level says before the queue is seen: m among the matching candidate, u among the others of the
#: same customer that day (the candidates the rules found: not random orders).
ORDER_FIELDS = (
    FieldSpec("customer", m={Level.EQUAL: 0.97, Level.DIFFERENT: 0.02, Level.MISSING: 0.01},
              u={Level.EQUAL: 0.95, Level.DIFFERENT: 0.04, Level.MISSING: 0.01}),
    FieldSpec("day", m={Level.EQUAL: 0.97, Level.DIFFERENT: 0.02, Level.MISSING: 0.01},
              u={Level.EQUAL: 0.95, Level.DIFFERENT: 0.04, Level.MISSING: 0.01}),
    FieldSpec("status", m={Level.EQUAL: 0.9, Level.DIFFERENT: 0.05, Level.MISSING: 0.05},
              u={Level.EQUAL: 0.3, Level.DIFFERENT: 0.65, Level.MISSING: 0.05}),
)
