"""CONTRACT §2-§3 as unit tests: normalisers and matchers, examples and properties."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bson.int64 import Int64
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.core.models import CANDIDATE_CAP, Category
from linkage.core.normalize import normalize_date, normalize_email, normalize_phone
from linkage.relations.order_delivery.matching import classify_delivery, index_orders
from linkage.relations.user_customer.matching import (
    CustomerKey,
    classify_from_customer,
    classify_from_user,
    classify_linked_user,
    classify_unlinked_user,
)

import oracle

IST = ZoneInfo("Asia/Kolkata")


@pytest.mark.parametrize(("raw", "want"), [
    ("9876543210", "9876543210"), ("+91 98765 43210", "9876543210"), ("919876543210", "9876543210"),
    ("09876543210", "9876543210"), (9876543210, "9876543210"), (Int64(9876543210), "9876543210"),
    ("98765-43210", "9876543210"), ("5876543210", None), ("987654321", None), ("+1 98765 43210", None),
    (None, None), ("", None), (True, None), (["9876543210"], None), ("٩٨٧٦٥٤٣٢١٠", None),
])
def test_phone(raw: Any, want: str | None) -> None:
    assert normalize_phone(raw) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("  Asha.N@Example.COM ", "asha.n@example.com"), ("a@b.co", "a@b.co"), ("a@@b.co", None),
    ("a@bco", None), ("@b.co", None), ("ab.co", None), (None, None), (42, None),
])
def test_email(raw: Any, want: str | None) -> None:
    assert normalize_email(raw) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("2026-03-01", date(2026, 3, 1)), (" 2026-03-01 ", date(2026, 3, 1)),
    ("2026-03-01T10:30:00+05:30", date(2026, 3, 1)), ("2026-02-28T22:00:00Z", date(2026, 3, 1)),
    ("2026-03-01T23:30:00", date(2026, 3, 1)),
    (datetime(2026, 2, 28, 20, 0), date(2026, 3, 1)),  # BSON datetimes are UTC: 01:30 IST next day
    (datetime(2026, 3, 1, 4, 0), date(2026, 3, 1)),
    ("2026-02-30", None), ("01/03/2026", None), ("20260301", None), (20260301, None), (None, None), ("", None),
])
def test_delivery_date(raw: Any, want: date | None) -> None:
    assert normalize_date(raw, IST) == want


def test_timezone_is_configurable() -> None:
    assert normalize_date(datetime(2026, 2, 28, 20, 0), ZoneInfo("UTC")) == date(2026, 2, 28)


def _delivery(**fields: Any) -> dict:
    return {"_id": 1, "id": "d", **fields}


def test_order_delivery_rules() -> None:
    orders = [{"id": "o1", "customer_id": "c", "delivery_date": "2026-03-01", "status": "delivered"},
              {"id": "o2", "customer_id": "c", "delivery_date": "2026-03-02", "status": "confirmed"},
              {"id": "o3", "customer_id": "c", "delivery_date": "2026-03-02", "status": "pending"},
              {"id": "o4", "customer_id": "c", "delivery_date": "2026-03-03", "status": "cancelled"}]
    cands = index_orders(orders, IST)
    decide = lambda **f: classify_delivery(_delivery(**f), IST, cands, {"o1"})  # noqa: E731
    assert decide(customer_id="c", delivery_date="2026-03-01").link == "o1"
    ambiguous = decide(customer_id="c", delivery_date="2026-03-02")
    assert ambiguous.category == Category.AMBIGUOUS and ambiguous.field == "customer_id and delivery_date"
    assert [(c.id, c.facts) for c in ambiguous.candidates] == [
        ("o2", {"status": "confirmed", "delivery_date": "2026-03-02"}),
        ("o3", {"status": "pending", "delivery_date": "2026-03-02"})]
    assert decide(customer_id="c", delivery_date="2026-03-01", order_id="gone").missing == "gone"
    assert decide(customer_id="c", delivery_date="2026-03-03").category == Category.UNMATCHED
    assert decide(customer_id="c", delivery_date="2026-13-03").category == Category.INVALID
    assert decide(customer_id=7, delivery_date="2026-03-01").category == Category.INVALID
    assert decide(customer_id="c", delivery_date="2026-03-01", order_id="o1").category == Category.ALREADY_LINKED
    assert decide(customer_id="c", delivery_date="2026-03-01", order_id="o9").category == Category.DANGLING
    assert decide(customer_id="c", delivery_date="2026-03-01", order_id="").link == "o1"


def _key(oid: int, cid: str, phone: str | None, email: str | None = None, user_id: Any = None) -> CustomerKey:
    return CustomerKey(oid=oid, id=cid, phone=phone, email=email, user_id=user_id)


def test_user_customer_rules() -> None:
    a = _key(1, "A", "9876543210", "a@x.in")
    b = _key(2, "B", "9876543211", "b@x.in")
    b_twin = _key(3, "B2", "9876543211")
    taken = _key(4, "T", "9876543212", user_id="someone")
    by_phone = {k.phone: [k] for k in (a, taken)} | {"9876543211": [b, b_twin]}
    by_email = {"a@x.in": [a], "b@x.in": [b]}
    decide = lambda phone, email, claimed=frozenset(), named=None: classify_unlinked_user(  # noqa: E731
        {"_id": 9, "id": "u", "phone": phone, "email": email}, by_phone, by_email,
        dict.fromkeys(claimed, "other-user"), named)
    assert decide("+91 98765 43210", None).link == "A"
    assert decide(None, "A@X.IN").link == "A"
    disagree = decide("9876543210", "b@x.in")  # phone and email name different customers
    assert disagree.category == Category.AMBIGUOUS and disagree.field == "phone and email"
    assert [(c.id, c.facts["matched_by"]) for c in disagree.candidates] == [("A", "phone"), ("B", "email")]
    twins = decide("9876543211", None)
    assert twins.category == Category.AMBIGUOUS and [c.id for c in twins.candidates] == ["B", "B2"]
    assert twins.candidates[0].facts["phone_ends"] == "…11" and "9876543211" not in twins.model_dump_json()
    conflict = decide("9876543212", None)
    assert conflict.category == Category.CONFLICT and [c.id for c in conflict.candidates] == ["T"]
    assert [(h.collection, h.id) for h in conflict.holders] == [("users", "someone")]
    claimed = decide("9876543210", None, {"A"})
    assert claimed.category == Category.CONFLICT and [h.id for h in claimed.holders] == ["other-user"]
    assert decide("9000000000", "z@z.in").category == Category.UNMATCHED
    assert decide("9000000000", "z@z.in").field == "phone and email"
    assert decide("123", "nope").category == Category.INVALID
    one_sided = decide("9876543210", None, named=b)
    assert one_sided.category == Category.ONE_SIDED and [(h.collection, h.id) for h in one_sided.holders] == [
        ("customers_v2", "B")]
    user = {"_id": 9, "id": "u", "customer_v2_id": "A"}
    assert classify_linked_user(user, None).category == Category.DANGLING
    assert classify_linked_user(user, None).missing == "A"
    assert classify_linked_user(user, a).category == Category.ONE_SIDED
    assert classify_linked_user(user, _key(1, "A", None, user_id="u")).category == Category.ALREADY_LINKED


def test_candidates_are_capped_with_a_count_of_the_rest() -> None:
    keys = [_key(n, f"C{n:02d}", "9876543210") for n in range(CANDIDATE_CAP + 5)]
    found = classify_unlinked_user({"_id": 9, "id": "u", "phone": "9876543210"}, {"9876543210": keys}, {}, {})
    assert found.category == Category.AMBIGUOUS
    assert [c.id for c in found.candidates] == [f"C{n:02d}" for n in range(CANDIDATE_CAP)]
    assert found.more_candidates == 5


anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30),
                     st.text(alphabet="0123456789 +-()", max_size=16), st.lists(st.integers(), max_size=2),
                     st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)))


@settings(max_examples=400, deadline=None)
@given(anything)
def test_normalisers_agree_with_the_oracle_on_anything(value: Any) -> None:
    assert normalize_phone(value) == oracle.phone(value)
    assert normalize_email(value) == oracle.email(value)
    assert normalize_date(value, IST) == oracle.day(value)


def _user(**fields: Any) -> dict:
    return {"_id": 1, "id": "u", **fields}


def _customer(**fields: Any) -> dict:
    return {"_id": 2, "id": "c", **fields}


def test_reconciliation_completes_a_pair_from_the_user_side_only_when_nobody_else_claims_it() -> None:
    user = _user(customer_v2_id="c")
    decide = lambda customers, users_naming=1, customers_naming=0: classify_from_user(  # noqa: E731
        user, customers, users_naming_customer=users_naming, customers_naming_user=customers_naming)
    assert decide([_customer(user_id=None)]).category == Category.LINKED
    assert decide([_customer(user_id="")]).link == "c"
    assert decide([_customer(user_id="u")]).category == Category.ALREADY_LINKED
    assert decide([]).category == Category.DANGLING
    assert decide([_customer(user_id="other")]).category == Category.CONFLICT
    assert decide([_customer()], users_naming=2).category == Category.CONFLICT
    assert decide([_customer()], customers_naming=1).category == Category.CONFLICT
    assert decide([_customer(), _customer()]).category == Category.CONFLICT
    no_id = classify_from_user(_user(id=7, customer_v2_id="c"), [_customer()], users_naming_customer=1,
                               customers_naming_user=0)
    assert no_id.category == Category.ONE_SIDED and no_id.reason.startswith("id:")


def test_reconciliation_completes_a_pair_from_the_customer_side_and_reports_it_on_the_user() -> None:
    customer = _customer(user_id="u")
    decide = lambda users, customers_naming=1, users_naming=0: classify_from_customer(  # noqa: E731
        customer, users, customers_naming_user=customers_naming, users_naming_customer=users_naming)
    repaired = decide([_user(customer_v2_id="")])
    assert repaired is not None and repaired.category == Category.LINKED and repaired.oid == 1
    assert repaired.collection == "users" and repaired.link == "c"
    assert decide([_user(customer_v2_id="c")]) is None  # whole: counted from the user side
    dangling = decide([])
    assert dangling is not None and dangling.category == Category.DANGLING and dangling.oid == 2
    for conflicting in (decide([_user(customer_v2_id="c2")]), decide([_user()], customers_naming=2),
                        decide([_user()], users_naming=1), decide([_user(), _user()])):
        assert conflicting is not None and conflicting.category == Category.CONFLICT
