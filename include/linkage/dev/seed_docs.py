"""The documents of the demo data (`linkage.dev.seed`), in the shapes the app stored them.

Phones and emails in many shapes (integers, `+91` prefixes, spaces, capitals), dates as strings, ISO
datetimes and BSON datetimes across the midnight of the business timezone; deterministic for a seed.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from linkage.core.app_schema import APP_COLLECTIONS

STAFF_ROLES = ["admin", "delivery_boy", "marketing_staff"]
FIRST_NAMES = ["Asha", "Ravi", "Meera", "Arjun", "Priya", "Vikram", "Neha", "Kiran", "Anil", "Divya"]
LAST_NAMES = ["Iyer", "Sharma", "Reddy", "Nair", "Gupta", "Khan", "Das", "Menon"]


class DocumentMaker:
    """Makes the app's documents, in the shapes the app stored them, into `docs`."""

    def __init__(self, customers: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.customers = customers
        self.docs: dict[str, list[dict[str, Any]]] = {name: [] for name in APP_COLLECTIONS}
        self.bad_inputs: Counter[str] = Counter()
        self._serial = 0
        self.delivery_boys: list[str] = []

    # -- values in the shapes the app stored them ------------------------------
    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def fresh_phone(self) -> str:
        self._serial += 1
        return f"{self.rng.choice('6789')}{self._serial:09d}"

    def fresh_email(self, name: str) -> str:
        self._serial += 1
        return f"{name.split()[0].lower()}.{self._serial}@example.com"

    def styled_phone(self, digits: str) -> Any:
        style = self.rng.randrange(7)
        return [digits, f"+91 {digits[:5]} {digits[5:]}", f"+91{digits}", f"0{digits}",
                f"{digits[:5]}-{digits[5:]}", int(digits), f"91-{digits}"][style]

    def styled_email(self, email: str) -> str:
        return [email, email.upper(), f"  {email.capitalize()} "][self.rng.randrange(3)]

    def name(self) -> str:
        first = self.rng.choice(FIRST_NAMES)
        return f"{first} {self.rng.choice(LAST_NAMES)}"

    def created(self) -> datetime:
        return datetime(2025, 1, 1) + timedelta(minutes=self.rng.randrange(500_000))

    @staticmethod
    def _pick(rng: random.Random, weights: dict[str, int]) -> str:
        return rng.choices(list(weights), weights=list(weights.values()))[0]

    # -- documents ---------------------------------------------------------------
    def customer(self, phone: Any, email: Any, **extra: Any) -> dict[str, Any]:
        doc = {"id": self.uid(), "name": self.name(), "phone": phone, "status": "active",
               "created_at": self.created(), **extra}
        if email is not None:
            doc["email"] = email
        self.docs["customers_v2"].append(doc)
        return doc

    def user(self, phone: Any, email: Any, role: str | None = "customer", **extra: Any) -> dict[str, Any]:
        doc = {"id": self.uid(), "role": role, "name": self.name(), "phone": phone, "email": email,
               "created_at": self.created(), **extra}
        self.docs["users"].append(doc)
        return doc

    def staff(self, count: int) -> None:
        """Staff accounts are never matched, even when they share a customer's phone."""
        for i in range(count):
            role = STAFF_ROLES[i % len(STAFF_ROLES)]
            doc = self.user(self.styled_phone(self.fresh_phone()), self.fresh_email("staff"), role=role)
            if role == "delivery_boy":
                self.delivery_boys.append(doc["id"])
        self.user(self.styled_phone(self.fresh_phone()), None, role=None)
        self.bad_inputs["users.role"] += 1

    def day_text(self, day: date) -> Any:
        """A delivery day in one of the shapes the app wrote it (all mean `day` in IST)."""
        style = self.rng.randrange(5)
        if style == 0:
            return datetime(day.year, day.month, day.day) - timedelta(hours=4)  # 20:00 UTC = 01:30 IST next day
        if style == 1:
            return datetime(day.year, day.month, day.day, 4)  # 09:30 IST
        if style == 2:
            return f"{day.isoformat()}T10:30:00+05:30"
        if style == 3:
            return f"{(day - timedelta(days=1)).isoformat()}T22:00:00Z"
        return day.isoformat()

    def order(self, customer_id: str, day: date, status: str) -> dict[str, Any]:
        stored: Any = day.isoformat() if self.rng.random() < 0.85 else (
            datetime(day.year, day.month, day.day) - timedelta(hours=5, minutes=30))
        doc = {"id": self.uid(), "customer_id": customer_id, "delivery_date": stored, "status": status,
               "amount": self.rng.randrange(50, 2000), "created_at": self.created()}
        self.docs["orders"].append(doc)
        return doc

    def delivery(self, customer_id: Any, when: Any, **extra: Any) -> dict[str, Any]:
        doc = {"id": self.uid(), "customer_id": customer_id, "delivery_date": when, "status": "delivered",
               "delivery_boy_id": self.rng.choice(self.delivery_boys) if self.delivery_boys else None, **extra}
        if "order_id" not in doc and self.rng.random() < 0.1:
            doc["order_id"] = self.rng.choice([None, ""])
        self.docs["delivery_statuses"].append(doc)
        return doc
