"""Benchmark data: clean, uniformly linkable documents, inserted as fast as the server allows.

Every delivery status has exactly one order (same customer, same day), and every
customer account exactly one profile (same phone, another format), so the
engine's work is the same per document at every size.

`drift` then writes what a day of the live app leaves for the nightly
reconciliation (CONTRACT §6a), in known amounts, so the reconcile's counts can
be checked against exactly what was planted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from pymongo.database import Database

CHUNK = 5000
BASE = date(2026, 1, 1)
#: The day the app's new deliveries fall on: after the seeded two, so each has exactly one order.
DRIFT_DAY = (BASE + timedelta(days=2)).isoformat()


def insert(db: Database, name: str, docs: Any) -> None:
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
    insert(db, "orders", ({"id": f"o{i}", "customer_id": f"c{i // 2}", "delivery_date": day(i), "status": "delivered"}
                           for i in range(n)))
    insert(db, "delivery_statuses", ({"id": f"d{i}", "customer_id": f"c{i // 2}", "delivery_date": day(i),
                                       "status": "delivered", **({"order_id": f"o{i}"} if linked else {})}
                                      for i in range(n)))


def _customer(i: int, *, phone: str | None = None, user_id: str | None = None) -> dict[str, Any]:
    return {"id": f"k{i}", "phone": phone or f"9{i:09d}", "email": f"c{i}@example.com", "status": "active",
            **({"user_id": user_id} if user_id else {})}


def _user(i: int, *, phone: str | None = None, customer_id: str | None = None) -> dict[str, Any]:
    return {"id": f"u{i}", "role": "customer", "phone": phone or f"+91 9{i:09d}",
            **({"customer_v2_id": customer_id} if customer_id else {})}


def accounts(db: Database, n: int, *, linked: bool = False, first: int = 0) -> None:
    """n customer profiles and n customer accounts (numbered from `first`), paired by phone
    (the same number, another format); `linked` writes both link fields up front."""
    numbers = range(first, first + n)
    insert(db, "customers_v2", (_customer(i, user_id=f"u{i}" if linked else None) for i in numbers))
    insert(db, "users", (_user(i, customer_id=f"k{i}" if linked else None) for i in numbers))


@dataclass(frozen=True)
class Drift:
    """What the app wrote since the last run, by kind: what a reconcile must link, repair and report."""

    deliveries: int  # new delivery statuses of existing customers, one order each (on a new day): to link
    pairs: int  # new profile/account pairs, matched by phone: to link
    one_sided_from_users: int  # new accounts naming a new profile that does not name them back: to repair
    one_sided_from_customers: int  # new profiles naming a new account that does not name them back: to repair
    deleted_orders: int  # orders deleted under linked deliveries: drift to report, never to "fix"

    @classmethod
    def of(cls, fraction: float, n_deliveries: int, n_pairs: int) -> Drift:
        """`fraction` of the deliveries and of the account pairs new, a tenth of that one-sided each way,
        a hundredth of it as deleted orders (at least one of each kind when there is any drift)."""
        def share(n: int, part: float = 1.0) -> int:
            return max(1, round(fraction * part * n)) if fraction > 0 else 0
        return cls(deliveries=share(n_deliveries), pairs=share(n_pairs), one_sided_from_users=share(n_pairs, 0.1),
                   one_sided_from_customers=share(n_pairs, 0.1), deleted_orders=share(n_deliveries, 0.01))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _spread(count: int, n: int, offset: int = 0) -> list[int]:
    """`count` indices spread evenly over range(n), so the drift touches the whole key space."""
    return [(offset + i * n // count) % n for i in range(count)] if count else []


def drift(db: Database, planted: Drift, n_deliveries: int, n_pairs: int) -> Drift:
    """Write `planted` into a linked database of `n_deliveries` deliveries and `n_pairs` account pairs,
    the way the app would; returns it (the counts the reconcile must find)."""
    customers = _spread(planted.deliveries, n_deliveries // 2)  # existing customers (two deliveries each)
    insert(db, "orders", ({"id": f"o-new{c}", "customer_id": f"c{c}", "delivery_date": DRIFT_DAY,
                            "status": "delivered"} for c in customers))
    insert(db, "delivery_statuses", ({"id": f"d-new{c}", "customer_id": f"c{c}", "delivery_date": DRIFT_DAY,
                                       "status": "delivered"} for c in customers))
    accounts(db, planted.pairs, first=n_pairs)
    # one-sided pairs get phones that match nobody, so only the repair can link them
    first = n_pairs + planted.pairs
    from_users = range(first, first + planted.one_sided_from_users)
    from_customers = range(from_users.stop, from_users.stop + planted.one_sided_from_customers)
    insert(db, "customers_v2", [_customer(i, phone=f"7{i:09d}") for i in from_users] +
            [_customer(i, phone=f"7{i:09d}", user_id=f"u{i}") for i in from_customers])
    insert(db, "users", [_user(i, phone=f"+91 8{i:09d}", customer_id=f"k{i}") for i in from_users] +
            [_user(i, phone=f"+91 8{i:09d}") for i in from_customers])
    # the app deletes orders that linked deliveries name (the seeded pairing: d{i} -> o{i})
    doomed = [f"o{i}" for i in _spread(planted.deleted_orders, n_deliveries, offset=1)]
    if doomed:
        db.orders.delete_many({"id": {"$in": doomed}})
    return planted
