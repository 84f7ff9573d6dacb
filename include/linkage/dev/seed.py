"""Realistic, deterministic dirty demo data with every category planted.

Each customer profile gets a *scenario* for its account (linked by phone, by email, ambiguous, in
conflict, ...) and each of its deliveries one for the order link. Phones and emails are written in the
many shapes the app stored (integers, `+91` prefixes, spaces, capitals), dates as strings, ISO datetimes
and BSON datetimes across the midnight of the business timezone. What was planted is counted as it is
generated, so the counts are the ground truth a migration must reproduce.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from pymongo.database import Database

from linkage.core.app_schema import APP_COLLECTIONS
from linkage.core.errors import LinkageError
from linkage.core.models import Category
from linkage.dev.seed_docs import DocumentMaker
from linkage.dev.seed_truth import TRUTH, write_truth
from linkage.relations.order_delivery import STEP as ORDER_DELIVERY
from linkage.relations.user_customer.sides import STEP as USER_CUSTOMER

#: Account scenarios per customer profile, with their weights.
USER_SCENARIOS = {
    "by_phone": 62, "by_email": 4, "phone_only": 4, "unmatched": 4, "duplicate_profile": 1,
    "duplicate_profile_evident": 1, "phone_email_disagree": 1, "two_accounts": 1, "competing_accounts": 1,
    "profile_taken": 1, "invalid": 2,
    "already_linked": 6, "one_sided_user": 2, "one_sided_customer": 1, "dangling": 1, "no_account": 8,
}
#: The account scenarios whose pair the app already (half) linked.
LINKED_SCENARIOS = frozenset({"already_linked", "one_sided_user", "one_sided_customer", "dangling"})
#: Delivery scenarios per delivered order, with their weights.
DELIVERY_SCENARIOS = {
    "linked": 78, "two_orders_same_day": 2, "two_delivered_same_day": 1, "only_cancelled": 2,
    "cancelled_and_live": 2, "no_order": 3,
    "bad_customer": 2, "bad_date": 3, "already_linked": 5, "dangling": 2,
}
BAD_DATES: list[Any] = ["31/12/2025", "2025-13-45", "tomorrow", None, 20250101, "", {"day": 1}]
BAD_CUSTOMER_IDS: list[Any] = [None, "", 12345, ["x"]]
BAD_PHONES: list[Any] = [None, "", "12345", "not a phone", 1234567890123, ["9876543210"], {"n": 1}]
BAD_EMAILS: list[Any] = [None, "", "no-at-sign", "two@@ats.com", 42, "nodot@domain"]
#: The account scenarios planting review items whose right decision is known (`linkage_seed_truth`).
TRUTH_SCENARIOS = frozenset({"duplicate_profile", "duplicate_profile_evident", "phone_email_disagree",
                             "two_accounts", "competing_accounts", "profile_taken"})


class Seeder(DocumentMaker):
    """Generates the documents for `customers` profiles; `planted` counts what was planted, `truth` says the
    right decision on each ambiguous and conflict item planted, and whether the evidence settles it."""

    def __init__(self, customers: int, seed: int) -> None:
        super().__init__(customers, seed)
        self.planted: dict[str, Counter[str]] = {ORDER_DELIVERY: Counter(), USER_CUSTOMER: Counter()}
        self.truth: list[dict[str, Any]] = []

    def knows(self, step: str, doc: dict[str, Any], collection: str, truth: str | None, evident: bool) -> None:
        self.truth.append({"_id": doc["id"], "step": step, "collection": collection, "truth": truth or "none",
                           "evident": evident})

    def plant_user(self, category: Category, n: int = 1) -> None:
        self.planted[USER_CUSTOMER][category.value] += n

    def account_scenario(self, scenario: str) -> dict[str, Any]:
        """Create one profile (plus accounts and extra profiles) per the scenario."""
        phone, email = self.fresh_phone(), self.fresh_email(self.name())
        c_phone = self.styled_phone(phone) if self.rng.random() > 0.05 else int(phone)
        c_email = self.styled_email(email) if self.rng.random() > 0.1 else None
        if scenario in LINKED_SCENARIOS:
            return self.linked_account(scenario, phone, c_phone, c_email)
        return self.unlinked_account(scenario, phone, email, c_phone, c_email)

    def unlinked_account(self, scenario: str, phone: str, email: str, c_phone: Any, c_email: Any) -> dict[str, Any]:
        """A profile and the accounts the linking rules will judge (no link set yet)."""
        if scenario in TRUTH_SCENARIOS:
            return self.decidable_account(scenario, phone, email, c_phone, c_email)
        if scenario == "by_phone":
            customer = self.customer(c_phone, c_email)
            self.user(self.styled_phone(phone), self.styled_email(email) if c_email else None)
            self.plant_user(Category.LINKED)
        elif scenario == "by_email":
            customer = self.customer(self.styled_phone(self.fresh_phone()), self.styled_email(email))
            self.user(self.rng.choice(BAD_PHONES), self.styled_email(email))
            self.bad_inputs["users.phone"] += 1
            self.plant_user(Category.LINKED)
        elif scenario == "phone_only":
            customer = self.customer(c_phone, c_email)
            self.user(self.styled_phone(phone), None)
            self.plant_user(Category.LINKED)
        elif scenario == "unmatched":
            customer = self.customer(c_phone, c_email)
            self.user(self.styled_phone(self.fresh_phone()), self.fresh_email("nobody"))
            self.plant_user(Category.UNMATCHED)
        elif scenario == "invalid":
            customer = self.customer(c_phone, c_email)
            self.user(self.rng.choice(BAD_PHONES), self.rng.choice(BAD_EMAILS))
            self.bad_inputs["users.phone+email"] += 1
            self.plant_user(Category.INVALID)
        else:  # no_account: a profile nobody has logged in with yet
            customer = self.customer(c_phone, c_email)
        return customer

    def decidable_account(self, scenario: str, phone: str, email: str, c_phone: Any, c_email: Any,
                          ) -> dict[str, Any]:
        """A profile and accounts left for a person to decide (ambiguous, conflict), with the right decision."""
        if scenario in ("duplicate_profile", "duplicate_profile_evident"):  # two profiles share the phone
            evident = scenario == "duplicate_profile_evident"
            customer = self.customer(c_phone, self.styled_email(email) if evident else c_email)
            twin = self.customer(self.styled_phone(phone), None, **({} if evident else {"name": customer["name"]}))
            if evident and twin["name"] == customer["name"]:
                twin["name"] += " Rao"
            user = self.user(self.styled_phone(phone), self.styled_email(email) if evident else None,
                             name=customer["name"])
            self.knows(USER_CUSTOMER, user, "users", customer["id"], evident)
            self.plant_user(Category.AMBIGUOUS)
        elif scenario == "phone_email_disagree":  # the phone names one profile, the email another
            customer = self.customer(c_phone, email)
            other_email = self.fresh_email("other")
            self.customer(self.styled_phone(self.fresh_phone()), other_email)
            self.user(self.styled_phone(phone), self.styled_email(other_email))  # which one is not known: no truth
            self.plant_user(Category.AMBIGUOUS)
        elif scenario in ("two_accounts", "competing_accounts"):  # two accounts want one profile
            evident = scenario == "competing_accounts"
            customer = self.customer(c_phone, self.styled_email(email) if evident else c_email)
            first = self.user(self.styled_phone(phone), self.styled_email(email) if evident else None,
                              name=customer["name"])
            second = self.user(self.styled_phone(phone), None, **({} if evident else {"name": customer["name"]}))
            if evident and second["name"] == customer["name"]:
                second["name"] += " Rao"
            self.knows(USER_CUSTOMER, first, "users", customer["id"], evident)
            self.knows(USER_CUSTOMER, second, "users", None, evident)
            self.plant_user(Category.CONFLICT, 2)
        else:  # profile_taken: the profile is another (linked) account's
            owner = self.user(self.styled_phone(self.fresh_phone()), None)
            customer = self.customer(c_phone, c_email, user_id=owner["id"])
            owner["customer_v2_id"] = customer["id"]
            self.knows(USER_CUSTOMER, self.user(self.styled_phone(phone), None), "users", None, True)
            self.plant_user(Category.CONFLICT)
            self.plant_user(Category.ALREADY_LINKED)
        return customer

    def linked_account(self, scenario: str, phone: str, c_phone: Any, c_email: Any) -> dict[str, Any]:
        """A profile whose pair the app already linked, wholly, on one side, or to nothing."""
        if scenario == "already_linked":
            customer = self.customer(c_phone, c_email)
            user = self.user(self.styled_phone(phone), None, customer_v2_id=customer["id"])
            customer["user_id"] = user["id"]
            self.plant_user(Category.ALREADY_LINKED)
        elif scenario == "one_sided_user":
            customer = self.customer(c_phone, c_email, user_id=self.rng.choice([None, ""]))
            self.user(self.styled_phone(phone), None, customer_v2_id=customer["id"])
            self.plant_user(Category.ONE_SIDED)
        elif scenario == "one_sided_customer":
            user = self.user(self.styled_phone(phone), None, customer_v2_id=self.rng.choice([None, ""]))
            customer = self.customer(c_phone, c_email, user_id=user["id"])
            self.plant_user(Category.ONE_SIDED)
        else:  # dangling
            customer = self.customer(c_phone, c_email)
            self.user(self.styled_phone(self.fresh_phone()), None, customer_v2_id=self.uid())
            self.plant_user(Category.DANGLING)
        return customer

    def deliveries_for(self, customer_id: str) -> None:
        days = sorted(self.rng.sample(range(300), 4))
        base = date(2026, 1, 1)
        for offset in days[: self.rng.randrange(1, 4)]:
            day = base + timedelta(days=offset)
            scenario = self._pick(self.rng, DELIVERY_SCENARIOS)
            category = self.delivery_scenario(scenario, customer_id, day)
            self.planted[ORDER_DELIVERY][category.value] += 1
        spare = base + timedelta(days=days[-1])
        self.order(customer_id, spare, self.rng.choice(["pending", "confirmed", "out_for_delivery"]))

    def delivery_scenario(self, scenario: str, customer_id: str, day: date) -> Category:
        if scenario in ("two_orders_same_day", "two_delivered_same_day"):  # evident: only one was delivered
            order = self.order(customer_id, day, "delivered")
            self.order(customer_id, day, "confirmed" if scenario == "two_orders_same_day" else "delivered")
            delivery = self.delivery(customer_id, self.day_text(day))
            self.knows(ORDER_DELIVERY, delivery, "delivery_statuses", order["id"], scenario == "two_orders_same_day")
            return Category.AMBIGUOUS
        if scenario == "only_cancelled":
            self.order(customer_id, day, "cancelled")
            self.delivery(customer_id, self.day_text(day))
            return Category.UNMATCHED
        if scenario == "cancelled_and_live":
            self.order(customer_id, day, "cancelled")
            self.order(customer_id, day, "delivered")
            self.delivery(customer_id, self.day_text(day))
            return Category.LINKED
        if scenario == "no_order":
            self.delivery(customer_id, self.day_text(day))
            return Category.UNMATCHED
        order = self.order(customer_id, day, "delivered")
        if scenario == "bad_customer":
            self.delivery(self.rng.choice(BAD_CUSTOMER_IDS), self.day_text(day))
            self.bad_inputs["delivery_statuses.customer_id"] += 1
            return Category.INVALID
        if scenario == "bad_date":
            self.delivery(customer_id, self.rng.choice(BAD_DATES))
            self.bad_inputs["delivery_statuses.delivery_date"] += 1
            return Category.INVALID
        if scenario == "already_linked":
            self.delivery(customer_id, self.day_text(day), order_id=order["id"])
            return Category.ALREADY_LINKED
        if scenario == "dangling":
            self.delivery(customer_id, self.day_text(day), order_id=self.uid())
            return Category.DANGLING
        self.delivery(customer_id, self.day_text(day))
        return Category.LINKED

    def generate(self) -> None:
        self.staff(max(3, self.customers // 50))
        for _ in range(self.customers):
            customer = self.account_scenario(self._pick(self.rng, USER_SCENARIOS))
            self.deliveries_for(customer["id"])


def seed(db: Database, *, customers: int = 10_000, seed_value: int = 7, replace: bool = False,
         chunk: int = 5000) -> dict[str, Any]:
    """Fill `db` with demo data; refuse to touch a database that already has app data."""
    existing = {name: db[name].estimated_document_count() for name in APP_COLLECTIONS}
    if any(existing.values()) and not replace:
        busy = ", ".join(f"{n}={c}" for n, c in existing.items() if c)
        raise LinkageError(f"database {db.name!r} already has app data ({busy}); pass --replace to drop it first")
    for name in APP_COLLECTIONS:
        db.drop_collection(name)
    seeder = Seeder(customers, seed_value)
    seeder.generate()
    inserted = {}
    seeder.rng.shuffle(seeder.docs["users"])  # so conflicting accounts land in different batches
    for name, docs in seeder.docs.items():
        for start in range(0, len(docs), chunk):
            db[name].insert_many(docs[start:start + chunk], ordered=False)
        inserted[name] = len(docs)
    return {"db": db.name, "customers": customers, "seed": seed_value, "documents": inserted,
            "planted": {step: dict(sorted(c.items())) for step, c in seeder.planted.items()},
            "truth": write_truth(db[TRUTH], seeder.truth, chunk),
            "bad_inputs": dict(seeder.bad_inputs)}
