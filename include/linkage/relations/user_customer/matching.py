"""Migration 003: which customer profile a user account belongs to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from linkage.core.app_schema import CUSTOMERS, USERS
from linkage.core.comparing import FieldSpec, equal_level, fact, facts, name_level
from linkage.core.evidence import Comparison, Level
from linkage.core.models import Candidate, Category, Ref, Ruling, listed
from linkage.core.normalize import is_key, is_unset, normalize_email, normalize_phone


class CustomerKey(BaseModel):
    """What matching needs of a `customers_v2` document, normalised once."""

    oid: Any
    id: Any
    phone: str | None
    email: str | None
    user_id: Any = None
    had_user_id: bool = False
    #: What a person tells candidates apart by (CONTRACT: never the phone or email themselves).
    status: Any = None
    created_at: Any = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "CustomerKey":
        return cls(
            oid=doc["_id"],
            id=doc.get("id"),
            phone=normalize_phone(doc.get("phone")),
            email=normalize_email(doc.get("email")),
            user_id=doc.get("user_id"),
            had_user_id="user_id" in doc,
            status=doc.get("status"),
            created_at=doc.get("created_at"),
        )

    def candidate(self, matched_by: str) -> Candidate:
        """This customer as a candidate: its status, when it was created, which key matched, and the last
        two digits of its phone at most."""
        return Candidate.of(str(self.id), status=self.status, created_at=self.created_at, matched_by=matched_by,
                            phone_ends=f"…{self.phone[-2:]}" if self.phone else None)


def _held_by(collection: str, value: Any) -> tuple[Ref, ...]:
    return (Ref(collection=collection, id=value),) if is_key(value) else ()


def is_considered(user: Mapping[str, Any]) -> bool:
    """Only customer accounts without a link are matched."""
    return user.get("role") == "customer" and is_unset(user.get("customer_v2_id"))


def classify_linked_user(user: Mapping[str, Any], customer: CustomerKey | None) -> Ruling:
    """A user whose `customer_v2_id` is already set: is the pair whole?"""
    base = {"oid": user["_id"], "app_id": user.get("id")}
    if customer is None:
        named = user.get("customer_v2_id")
        return Ruling(**base, category=Category.DANGLING, reason="customer_v2_id: names no existing customer",
                        missing=named if isinstance(named, str) else None)
    if customer.user_id == user.get("id"):
        return Ruling(**base, category=Category.ALREADY_LINKED)
    named = (customer.candidate("customer_v2_id"),) if is_key(customer.id) else ()
    if is_unset(customer.user_id):
        return Ruling(**base, category=Category.ONE_SIDED, link=customer.id, candidates=named,
                        reason="user_id: unset on the customer this user names",
                        holders=_held_by(CUSTOMERS, customer.id))
    return Ruling(**base, category=Category.CONFLICT, reason="customer_v2_id: that customer names another user",
                    candidates=named, holders=_held_by(USERS, customer.user_id))


def _described(customers: Iterable[CustomerKey], phone_ids: Mapping[Any, CustomerKey],
               email_ids: Mapping[Any, CustomerKey]) -> list[Candidate]:
    """Customers as candidates, each saying which of the user's keys matched it."""
    return [c.candidate(" and ".join(key for key, ids in (("phone", phone_ids), ("email", email_ids)) if c.oid in ids))
            for c in customers if is_key(c.id)]


def classify_unlinked_user(
    user: Mapping[str, Any],
    by_phone: Mapping[str, list[CustomerKey]],
    by_email: Mapping[str, list[CustomerKey]],
    claimed_customer_ids: Mapping[str, str],
    named_by: CustomerKey | None = None,
) -> Ruling:
    """A considered user, against the customers sharing its phone or email.

    `claimed_customer_ids` are customers some other user already points at (the id of
    that user, by customer id): linking to one of them would break uniqueness, so it is
    a conflict. The rule that two considered users must not share one candidate needs
    every user, so the caller applies it after the whole scan. `named_by` is a customer
    whose `user_id` already names this user: the pair is one-sided, for reconciliation
    to repair. Ambiguous, conflicting and linked decisions carry their candidates.
    """
    base = {"oid": user["_id"], "app_id": user.get("id")}
    if named_by is not None:
        return Ruling(**base, category=Category.ONE_SIDED, link=named_by.id, holders=_held_by(CUSTOMERS, named_by.id),
                        reason="customer_v2_id: unset while a customer's user_id names this user",
                        candidates=(named_by.candidate("user_id"),) if is_key(named_by.id) else ())
    phone = normalize_phone(user.get("phone"))
    email = normalize_email(user.get("email"))
    if phone is None and email is None:
        return Ruling(**base, category=Category.INVALID, reason="phone and email: neither is valid")
    by_phone_ids = {c.oid: c for c in by_phone.get(phone, [])} if phone else {}
    by_email_ids = {c.oid: c for c in by_email.get(email, [])} if email else {}
    if by_phone_ids and by_email_ids and not by_phone_ids.keys() & by_email_ids.keys():
        return Ruling(**base, category=Category.AMBIGUOUS, reason="phone and email: they name different customers",
                        **listed(_described([*by_phone_ids.values(), *by_email_ids.values()], by_phone_ids,
                                            by_email_ids)))
    candidates = list((by_phone_ids or by_email_ids).values())
    if not candidates:
        return Ruling(**base, category=Category.UNMATCHED, reason="phone and email: no customer has either")
    if len(candidates) > 1:
        return Ruling(**base, category=Category.AMBIGUOUS,
                        reason=f"{'phone' if by_phone_ids else 'email'}: several customers have it",
                        **listed(_described(candidates, by_phone_ids, by_email_ids)))
    customer = candidates[0]
    if not is_key(customer.id):
        return Ruling(**base, category=Category.CONFLICT, reason="customer: its id is not usable")
    mine = tuple(_described(candidates, by_phone_ids, by_email_ids))
    if not is_unset(customer.user_id) or customer.id in claimed_customer_ids:
        holder = customer.user_id if not is_unset(customer.user_id) else claimed_customer_ids[customer.id]
        return Ruling(**base, category=Category.CONFLICT, reason="customer: already linked to a user",
                        candidates=mine, holders=_held_by(USERS, holder))
    return Ruling(**base, category=Category.LINKED, link=customer.id, candidates=mine)


def classify_from_user(user: Mapping[str, Any], customers: Sequence[Mapping[str, Any]], *,
                       users_naming_customer: int, customers_naming_user: int) -> Ruling:
    """Reconciliation, from the user side: a user whose `customer_v2_id` is set.

    `customers` are the documents whose `id` is that value (normally one). The
    pair is repaired (`linked`: set the customer's `user_id`) only when the
    customer's side is unset and nobody else claims either side: no other user
    names this customer, no customer names this user yet.
    """
    base = {"oid": user["_id"], "app_id": user.get("id")}
    if not customers:
        named = user.get("customer_v2_id")
        return Ruling(**base, category=Category.DANGLING, reason="customer_v2_id: names no existing customer",
                        missing=named if isinstance(named, str) else None)
    if len(customers) > 1:
        return Ruling(**base, category=Category.CONFLICT, reason="customer_v2_id: several customers have that id")
    customer = customers[0]
    if customer.get("user_id") == user.get("id") and is_key(user.get("id")):
        return Ruling(**base, category=Category.ALREADY_LINKED)
    if not is_unset(customer.get("user_id")):
        return Ruling(**base, category=Category.CONFLICT, reason="customer_v2_id: that customer names another user",
                        holders=_held_by(USERS, customer.get("user_id")))
    if users_naming_customer > 1:
        return Ruling(**base, category=Category.CONFLICT,
                        reason="customer_v2_id: another user names the same customer")
    if not is_key(user.get("id")):
        return Ruling(**base, category=Category.ONE_SIDED, link=customer.get("id"),
                        reason="id: the user has no usable id for the customer to name",
                        holders=_held_by(CUSTOMERS, customer.get("id")))
    if customers_naming_user > 0:
        return Ruling(**base, category=Category.CONFLICT, reason="id: another customer already names this user")
    return Ruling(**base, category=Category.LINKED, link=customer.get("id"))


def classify_from_customer(customer: Mapping[str, Any], users: Sequence[Mapping[str, Any]], *,
                           customers_naming_user: int, users_naming_customer: int) -> Ruling | None:
    """Reconciliation, from the customer side: a customer whose `user_id` is set.

    Returns None for a whole pair (the user side counts it). A pair whose user
    side is unset is repaired (`linked`, reported on the user: set its
    `customer_v2_id`) when no other customer names that user and no user names
    this customer yet; otherwise it is a conflict, reported on the user.
    """
    if not users:
        named = customer.get("user_id")
        return Ruling(oid=customer["_id"], app_id=customer.get("id"), category=Category.DANGLING,
                        reason="user_id: names no existing user", missing=named if isinstance(named, str) else None)
    on_customer = {"oid": customer["_id"], "app_id": customer.get("id"), "collection": CUSTOMERS}
    if len(users) > 1:
        return Ruling(**on_customer, category=Category.CONFLICT, reason="user_id: several users have that id")
    user = users[0]
    if user.get("customer_v2_id") == customer.get("id") and is_key(customer.get("id")):
        return None
    if not is_unset(user.get("customer_v2_id")):
        return Ruling(**on_customer, category=Category.CONFLICT, reason="user_id: that user names another customer",
                        holders=_held_by(CUSTOMERS, user.get("customer_v2_id")))
    on_user = {"oid": user["_id"], "app_id": user.get("id"), "collection": USERS}
    if customers_naming_user > 1:
        return Ruling(**on_user, category=Category.CONFLICT,
                        reason="customer_v2_id: several customers name this user")
    if not is_key(customer.get("id")):
        return Ruling(**on_user, category=Category.ONE_SIDED,
                        reason="customer_v2_id: the customer naming this user has no usable id",
                        holders=_held_by(CUSTOMERS, customer.get("id")))
    if users_naming_customer > 0:
        return Ruling(**on_user, category=Category.CONFLICT,
                        reason="customer_v2_id: another user already names the customer naming this user")
    return Ruling(**on_user, category=Category.LINKED, link=customer.get("id"))


# -- evidence: a user beside its candidate profiles (that phones and emails compare equal, never what they are) --

def user_facts(doc: Mapping[str, Any], tz: ZoneInfo) -> dict[str, str]:
    """A user's own facts: its role and when it was created."""
    return facts(role=fact(doc.get("role")), created_at=fact(doc.get("created_at"), tz))


def compare_customer(user: Mapping[str, Any], customer: Mapping[str, Any], tz: ZoneInfo) -> list[Comparison]:
    """A candidate profile beside the user: its phone, its email (normalised, compared) and its name."""
    return [equal_level("phone", normalize_phone(user.get("phone")), normalize_phone(customer.get("phone"))),
            equal_level("email", normalize_email(user.get("email")), normalize_email(customer.get("email"))),
            name_level("name", user.get("name"), customer.get("name"))]


#: What each level says before the queue is seen: m among the matching candidate, u among the other profiles the
#: rules found for the user (sharing its phone or its email: not random profiles).
CUSTOMER_FIELDS = (
    FieldSpec("phone", m={Level.EQUAL: 0.9, Level.DIFFERENT: 0.05, Level.MISSING: 0.05},
              u={Level.EQUAL: 0.7, Level.DIFFERENT: 0.25, Level.MISSING: 0.05}),
    FieldSpec("email", m={Level.EQUAL: 0.5, Level.DIFFERENT: 0.05, Level.MISSING: 0.45},
              u={Level.EQUAL: 0.05, Level.DIFFERENT: 0.3, Level.MISSING: 0.65}),
    FieldSpec("name", m={Level.EQUAL: 0.6, Level.SIMILAR: 0.15, Level.DIFFERENT: 0.2, Level.MISSING: 0.05},
              u={Level.EQUAL: 0.1, Level.SIMILAR: 0.1, Level.DIFFERENT: 0.75, Level.MISSING: 0.05}),
)
