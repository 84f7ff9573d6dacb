"""Migration 003: which customer profile a user account belongs to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from linkage.models import Category, Decision
from linkage.normalize import is_key, is_unset, normalize_email, normalize_phone


class CustomerKey(BaseModel):
    """What matching needs of a `customers_v2` document, normalised once."""

    oid: Any
    id: Any
    phone: str | None
    email: str | None
    user_id: Any = None
    had_user_id: bool = False

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "CustomerKey":
        return cls(
            oid=doc["_id"],
            id=doc.get("id"),
            phone=normalize_phone(doc.get("phone")),
            email=normalize_email(doc.get("email")),
            user_id=doc.get("user_id"),
            had_user_id="user_id" in doc,
        )


def is_considered(user: Mapping[str, Any]) -> bool:
    """Only customer accounts without a link are matched."""
    return user.get("role") == "customer" and is_unset(user.get("customer_v2_id"))


def classify_linked_user(user: Mapping[str, Any], customer: CustomerKey | None) -> Decision:
    """A user whose `customer_v2_id` is already set: is the pair whole?"""
    base = {"oid": user["_id"], "app_id": user.get("id")}
    if customer is None:
        return Decision(**base, category=Category.DANGLING)
    if customer.user_id == user.get("id"):
        return Decision(**base, category=Category.ALREADY_LINKED)
    if is_unset(customer.user_id):
        return Decision(**base, category=Category.ONE_SIDED, link=customer.id)
    return Decision(**base, category=Category.CONFLICT, reason="customer_v2_id: that customer names another user")


def classify_unlinked_user(
    user: Mapping[str, Any],
    by_phone: Mapping[str, list[CustomerKey]],
    by_email: Mapping[str, list[CustomerKey]],
    claimed_customer_ids: set[str],
    named_by: CustomerKey | None = None,
) -> Decision:
    """A considered user, against the customers sharing its phone or email.

    `claimed_customer_ids` are customers some other user already points at: linking
    to one of them would break uniqueness, so it is a conflict. The rule that two
    considered users must not share one candidate needs every user, so the caller
    applies it after the whole scan. `named_by` is a customer whose `user_id`
    already names this user: the pair is one-sided, for reconciliation to repair.
    """
    base = {"oid": user["_id"], "app_id": user.get("id")}
    if named_by is not None:
        return Decision(**base, category=Category.ONE_SIDED, link=named_by.id)
    phone = normalize_phone(user.get("phone"))
    email = normalize_email(user.get("email"))
    if phone is None and email is None:
        return Decision(**base, category=Category.INVALID, reason="phone and email: neither is valid")
    by_phone_ids = {c.oid: c for c in by_phone.get(phone, [])} if phone else {}
    by_email_ids = {c.oid: c for c in by_email.get(email, [])} if email else {}
    if by_phone_ids and by_email_ids and not by_phone_ids.keys() & by_email_ids.keys():
        return Decision(**base, category=Category.AMBIGUOUS, reason="phone and email name different customers")
    candidates = list((by_phone_ids or by_email_ids).values())
    if not candidates:
        return Decision(**base, category=Category.UNMATCHED)
    if len(candidates) > 1:
        return Decision(**base, category=Category.AMBIGUOUS)
    customer = candidates[0]
    if not is_key(customer.id):
        return Decision(**base, category=Category.CONFLICT, reason="customer: its id is not usable")
    if not is_unset(customer.user_id) or customer.id in claimed_customer_ids:
        return Decision(**base, category=Category.CONFLICT, reason="customer: already linked to a user")
    return Decision(**base, category=Category.LINKED, link=customer.id)


def classify_from_user(user: Mapping[str, Any], customers: Sequence[Mapping[str, Any]], *,
                       users_naming_customer: int, customers_naming_user: int) -> Decision:
    """Reconciliation, from the user side: a user whose `customer_v2_id` is set.

    `customers` are the documents whose `id` is that value (normally one). The
    pair is repaired (`linked`: set the customer's `user_id`) only when the
    customer's side is unset and nobody else claims either side: no other user
    names this customer, no customer names this user yet.
    """
    base = {"oid": user["_id"], "app_id": user.get("id")}
    if not customers:
        return Decision(**base, category=Category.DANGLING, reason="customer_v2_id: names no existing customer")
    if len(customers) > 1:
        return Decision(**base, category=Category.CONFLICT, reason="customer_v2_id: several customers have that id")
    customer = customers[0]
    if customer.get("user_id") == user.get("id") and is_key(user.get("id")):
        return Decision(**base, category=Category.ALREADY_LINKED)
    if not is_unset(customer.get("user_id")):
        return Decision(**base, category=Category.CONFLICT, reason="customer_v2_id: that customer names another user")
    if users_naming_customer > 1:
        return Decision(**base, category=Category.CONFLICT,
                        reason="customer_v2_id: another user names the same customer")
    if not is_key(user.get("id")):
        return Decision(**base, category=Category.ONE_SIDED, link=customer.get("id"),
                        reason="id: the user has no usable id for the customer to name")
    if customers_naming_user > 0:
        return Decision(**base, category=Category.CONFLICT, reason="id: another customer already names this user")
    return Decision(**base, category=Category.LINKED, link=customer.get("id"))


def classify_from_customer(customer: Mapping[str, Any], users: Sequence[Mapping[str, Any]], *,
                           customers_naming_user: int, users_naming_customer: int) -> Decision | None:
    """Reconciliation, from the customer side: a customer whose `user_id` is set.

    Returns None for a whole pair (the user side counts it). A pair whose user
    side is unset is repaired (`linked`, reported on the user: set its
    `customer_v2_id`) when no other customer names that user and no user names
    this customer yet; otherwise it is a conflict, reported on the user.
    """
    if not users:
        return Decision(oid=customer["_id"], app_id=customer.get("id"), category=Category.DANGLING,
                        reason="user_id: names no existing user")
    on_customer = {"oid": customer["_id"], "app_id": customer.get("id"), "collection": "customers_v2"}
    if len(users) > 1:
        return Decision(**on_customer, category=Category.CONFLICT, reason="user_id: several users have that id")
    user = users[0]
    if user.get("customer_v2_id") == customer.get("id") and is_key(customer.get("id")):
        return None
    if not is_unset(user.get("customer_v2_id")):
        return Decision(**on_customer, category=Category.CONFLICT, reason="user_id: that user names another customer")
    on_user = {"oid": user["_id"], "app_id": user.get("id"), "collection": "users"}
    if customers_naming_user > 1:
        return Decision(**on_user, category=Category.CONFLICT,
                        reason="customer_v2_id: several customers name this user")
    if not is_key(customer.get("id")):
        return Decision(**on_user, category=Category.ONE_SIDED,
                        reason="customer_v2_id: the customer naming this user has no usable id")
    if users_naming_customer > 0:
        return Decision(**on_user, category=Category.CONFLICT,
                        reason="customer_v2_id: another user already names the customer naming this user")
    return Decision(**on_user, category=Category.LINKED, link=customer.get("id"))
