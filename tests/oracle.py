"""An independent reading of docs/CONTRACT.md §2-§3, §6a for the tests: whole dataset, in memory.

Deliberately written apart from the engine (no shared code, no batching), so a
test can check every link the engine wrote against what the rules justify.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.database import Database

TZ = ZoneInfo("Asia/Kolkata")


def unset(v: Any) -> bool:
    return v is None or v == ""


def phone(v: Any) -> str | None:
    if isinstance(v, int) and not isinstance(v, bool):  # BSON Int64 is an int subclass
        v = str(v)
    if type(v) is not str:
        return None
    d = "".join(ch for ch in v if ch in "0123456789")
    if len(d) == 12 and d.startswith("91"):
        d = d[2:]
    elif len(d) == 11 and d.startswith("0"):
        d = d[1:]
    return d if len(d) == 10 and d[0] in "6789" else None


def email(v: Any) -> str | None:
    if type(v) is not str:
        return None
    e = v.strip().lower()
    if e.count("@") != 1:
        return None
    local, domain = e.split("@")
    return e if local and "." in domain else None


def day(v: Any) -> date | None:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=timezone.utc)).astimezone(TZ).date()
    if type(v) is not str:
        return None
    s = v.strip()
    try:
        if len(s) == 10:
            return datetime.strptime(s, "%Y-%m-%d").date()
        if len(s) >= 16 and s[10] in "T ":
            dt = datetime.fromisoformat(s)
            return dt.astimezone(TZ).date() if dt.tzinfo else dt.date()
    except ValueError:
        return None
    return None


def expected_order_links(deliveries: list[dict], orders: list[dict]) -> dict[Any, str]:
    """delivery _id -> order id it must be linked to (only those CONTRACT §3 justifies)."""
    live: dict[tuple[str, date], list[str]] = defaultdict(list)
    for o in orders:
        d = day(o.get("delivery_date"))
        usable = o.get("status") != "cancelled" and isinstance(o.get("customer_id"), str)
        if usable and d and isinstance(o.get("id"), str) and o["id"]:
            live[(o["customer_id"], d)].append(o["id"])
    links = {}
    for ds in deliveries:
        cid, d = ds.get("customer_id"), day(ds.get("delivery_date"))
        if unset(ds.get("order_id")) and isinstance(cid, str) and cid.strip() and d and len(live[(cid, d)]) == 1:
            links[ds["_id"]] = live[(cid, d)][0]
    return links


def expected_user_links(users: list[dict], customers: list[dict]) -> dict[Any, str]:
    """user _id -> customer id it must be linked to (both sides), per CONTRACT §3."""
    by_phone: dict[str, list[dict]] = defaultdict(list)
    by_email: dict[str, list[dict]] = defaultdict(list)
    for c in customers:
        if phone(c.get("phone")):
            by_phone[phone(c.get("phone"))].append(c)
        if email(c.get("email")):
            by_email[email(c.get("email"))].append(c)
    claimed = {u["customer_v2_id"] for u in users if isinstance(u.get("customer_v2_id"), str) and u["customer_v2_id"]}
    naming = {c["user_id"] for c in customers if isinstance(c.get("user_id"), str) and c["user_id"]}
    single: dict[Any, dict] = {}
    for u in users:
        if u.get("role") != "customer" or not unset(u.get("customer_v2_id")) or (
                isinstance(u.get("id"), str) and u["id"] in naming):
            continue
        p = by_phone.get(phone(u.get("phone")), []) if phone(u.get("phone")) else []
        e = by_email.get(email(u.get("email")), []) if email(u.get("email")) else []
        if p and e and not {id(x) for x in p} & {id(x) for x in e}:
            continue
        cands = p or e
        if len(cands) == 1 and unset(cands[0].get("user_id")) and cands[0].get("id") not in claimed:
            single[u["_id"]] = cands[0]
    taken = defaultdict(int)
    for c in single.values():
        taken[id(c)] += 1
    return {uid: c["id"] for uid, c in single.items() if taken[id(c)] == 1}


def expected_repairs(users: list[dict], customers: list[dict]) -> tuple[dict[Any, str], dict[Any, str]]:
    """One-sided pairs the nightly reconciliation completes (CONTRACT §3, §6a), from either side.

    Returns (user _id -> customer id to set, customer _id -> user id to set): the
    unset side of a pair is set only when no other document claims either side.
    """
    def key(v: Any) -> bool:
        return isinstance(v, str) and v != ""

    users_naming: dict[str, list[dict]] = defaultdict(list)
    for u in users:
        if key(u.get("customer_v2_id")):
            users_naming[u["customer_v2_id"]].append(u)
    customers_naming: dict[str, list[dict]] = defaultdict(list)
    for c in customers:
        if key(c.get("user_id")):
            customers_naming[c["user_id"]].append(c)
    users_by_id: dict[str, list[dict]] = defaultdict(list)
    for u in users:
        if key(u.get("id")):
            users_by_id[u["id"]].append(u)
    customers_by_id: dict[str, list[dict]] = defaultdict(list)
    for c in customers:
        if key(c.get("id")):
            customers_by_id[c["id"]].append(c)

    set_customer: dict[Any, str] = {}
    for u in users:  # the user names a customer whose side is unset
        cid = u.get("customer_v2_id")
        if not key(cid) or len(customers_by_id[cid]) != 1 or not key(u.get("id")) or not u["id"].strip():
            continue
        c = customers_by_id[cid][0]
        if unset(c.get("user_id")) and len(users_naming[cid]) == 1 and not customers_naming[u["id"]]:
            set_customer[c["_id"]] = u["id"]
    set_user: dict[Any, str] = {}
    for c in customers:  # the customer names a user whose side is unset
        uid = c.get("user_id")
        if not key(uid) or len(users_by_id[uid]) != 1 or not key(c.get("id")) or not c["id"].strip():
            continue
        u = users_by_id[uid][0]
        if unset(u.get("customer_v2_id")) and len(customers_naming[uid]) == 1 and not users_naming[c["id"]]:
            set_user[u["_id"]] = c["id"]
    return set_user, set_customer


def expected_links(before: dict[str, dict[Any, dict]]) -> dict[str, dict[Any, Any]]:
    """Every link field after a reconcile of `before`, by the oracle: what it must set, else what was there."""
    users, customers = list(before["users"].values()), list(before["customers_v2"].values())
    orders = expected_order_links(list(before["delivery_statuses"].values()), list(before["orders"].values()))
    user_links = expected_user_links(users, customers)
    set_user, set_customer = expected_repairs(users, customers)
    user_of = {cid: before["users"][uid]["id"] for uid, cid in user_links.items()}
    return {
        "delivery_statuses": {oid: orders.get(oid, d.get("order_id"))
                              for oid, d in before["delivery_statuses"].items()},
        "users": {oid: user_links.get(oid, set_user.get(oid, u.get("customer_v2_id")))
                  for oid, u in before["users"].items()},
        "customers_v2": {oid: user_of.get(c.get("id"), set_customer.get(oid, c.get("user_id")))
                         for oid, c in before["customers_v2"].items()},
    }


def links(db: Database) -> dict[str, dict[Any, Any]]:
    return {name: {d["_id"]: d.get(field) for d in db[name].find({}, {field: 1})}
            for name, field in (("delivery_statuses", "order_id"), ("users", "customer_v2_id"),
                                ("customers_v2", "user_id"))}
