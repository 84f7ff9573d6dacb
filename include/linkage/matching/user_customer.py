"""Migration 003: which customer profile a user account belongs to."""

from __future__ import annotations

from collections.abc import Mapping
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
