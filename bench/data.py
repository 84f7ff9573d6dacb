"""Benchmark data: clean, uniformly linkable documents, inserted as fast as the server allows.

Every delivery status has exactly one order (same customer, same day), and every
customer account exactly one profile (same phone, another format), so the
engine's work is the same per document at every size.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pymongo.database import Database

CHUNK = 5000
BASE = date(2026, 1, 1)


def _insert(db: Database, name: str, docs: Any) -> None:
    chunk = []
    for doc in docs:
        chunk.append(doc)
        if len(chunk) == CHUNK:
            db[name].insert_many(chunk, ordered=False)
            chunk = []
    if chunk:
        db[name].insert_many(chunk, ordered=False)


def deliveries(db: Database, n: int, *, linked: bool = False) -> None:
    """n orders and n delivery statuses (two deliveries per customer, on different days);
    `linked` writes each delivery's `order_id` up front (for validation-only runs)."""
    def day(i: int) -> str:
        return (BASE + timedelta(days=i % 2)).isoformat()
    _insert(db, "orders", ({"id": f"o{i}", "customer_id": f"c{i // 2}", "delivery_date": day(i), "status": "delivered"}
                           for i in range(n)))
    _insert(db, "delivery_statuses", ({"id": f"d{i}", "customer_id": f"c{i // 2}", "delivery_date": day(i),
                                       "status": "delivered", **({"order_id": f"o{i}"} if linked else {})}
                                      for i in range(n)))


def accounts(db: Database, n: int) -> None:
    """n customer profiles and n customer accounts, paired by phone."""
    _insert(db, "customers_v2", ({"id": f"k{i}", "phone": f"9{i:09d}", "email": f"c{i}@example.com", "status": "active"}
                                 for i in range(n)))
    _insert(db, "users", ({"id": f"u{i}", "role": "customer", "phone": f"+91 9{i:09d}"} for i in range(n)))
