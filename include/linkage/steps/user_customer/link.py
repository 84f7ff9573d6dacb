"""Migration 003: link `users.customer_v2_id` and `customers_v2.user_id` (CONTRACT §3).

Phones and emails are stored in many shapes, so the raw `{phone: 1}` index cannot
find a user's candidates safely (a missed shape could hide a second candidate and
turn an ambiguous user into a wrong link). The step therefore runs in phases:

1. `keys`: normalise every customer's phone and email once into a scratch
   collection indexed on the normalised values;
2. `plan`: classify every customer account against those keys, page by page,
   and store each proposed link in the plan (scratch) collection;
3. `resolve`: walk the proposals in customer order and mark those whose
   customer is proposed for more than one user as conflicts (a rule that needs
   every proposal: the walk keeps one customer's proposals in one batch);
4. `apply`: write the surviving proposals, both sides, journaled.

A reconciliation first repairs the one-sided pairs in the data, whatever wrote
them, in two passes over the link fields, each walked in the order of its link
field so that everyone naming the same document sits in one batch:

0a. `repair_from_users`: users whose `customer_v2_id` is set, joined to their
    customer; a customer whose `user_id` is unset gets it when nobody else
    claims either side;
0b. `repair_from_customers`: customers whose `user_id` is set, joined to their
    user; a user whose `customer_v2_id` is unset gets it likewise.

Then it links what is still unlinked (phases 1-4 over the unlinked accounts).
Nothing in `keys`, `plan` and `resolve` touches the app's collections.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from pymongo import ReplaceOne
from pymongo.collection import Collection
from pymongo.database import Database

from linkage.app_schema import CUSTOMER_LINK, CUSTOMERS, UNSET_VALUES, USER_LINK, USERS
from linkage.engine import BatchPlan, Pass, by_string, linked
from linkage.journal import FieldWrite
from linkage.lookups import DENSE_PER_KEY, by_keys
from linkage.matching.user_customer import (
    CustomerKey,
    classify_from_customer,
    classify_from_user,
    classify_linked_user,
    classify_unlinked_user,
    is_considered,
)
from linkage.models import Category, Decision, RunKind, Step
from linkage.normalize import is_key, normalize_email, normalize_phone
from linkage.steps.base import Phase, StepContext, StepSpec

KEYS, PLAN = "customer_keys", "link_plan"
PROPOSED = "proposed"
_USER_FIELDS = {"id": 1, "role": 1, "phone": 1, "email": 1, USER_LINK: 1}
_CUSTOMER_FIELDS = {"id": 1, "phone": 1, "email": 1, CUSTOMER_LINK: 1}
_PAIR_USER_FIELDS = {"id": 1, USER_LINK: 1}
_PAIR_CUSTOMER_FIELDS = {"id": 1, CUSTOMER_LINK: 1}


class Workspace:
    """The step's scratch collections, for one run."""

    def __init__(self, ctx: StepContext) -> None:
        self.db, self.run_id = ctx.db, ctx.run_id
        self.keys, self.plan = ctx.bookkeeping(KEYS), ctx.bookkeeping(PLAN)

    def keys_where(self, field: str, values: Iterable[Any]) -> list[CustomerKey]:
        wanted = list({v for v in values if v is not None})
        if not wanted:
            return []
        return [CustomerKey.model_validate(doc)
                for doc in self.keys.find({field: {"$in": wanted}, "run_id": self.run_id})]


def _key_document(run_id: str, customer: dict[str, Any]) -> dict[str, Any]:
    key = CustomerKey.from_document(customer)
    return {**key.model_dump(), "_id": f"{run_id}:{customer['_id']}", "run_id": run_id}


def _existing_ids(coll: Collection, ids: Iterable[str]) -> set[str]:
    wanted = list(set(ids))
    return {d["id"] for d in coll.find({"id": {"$in": wanted}}, {"id": 1}) if is_key(d.get("id"))} if wanted else set()


# -- 1. keys ---------------------------------------------------------------------------------------------------

def plan_keys(ws: Workspace, batch: list[dict[str, Any]], *, classify_links: bool) -> BatchPlan:
    """Normalise a page of customers into the keys; with `classify_links`, a customer naming a
    user who does not exist is `dangling` (a reconciliation finds those from the customer side)."""
    ws.keys.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True)
                        for d in (_key_document(ws.run_id, c) for c in batch)], ordered=False)
    dangling: list[Decision] = []
    if classify_links:
        existing = _existing_ids(ws.db[USERS], (c[CUSTOMER_LINK] for c in batch if is_key(c.get(CUSTOMER_LINK))))
        dangling = [Decision(oid=c["_id"], app_id=c.get("id"), category=Category.DANGLING,
                             reason="user_id: names no existing user")
                    for c in batch if is_key(c.get(CUSTOMER_LINK)) and c[CUSTOMER_LINK] not in existing]
    return BatchPlan(decisions=dangling, extra={"customers_indexed": len(batch)})


def keys_pass(ctx: StepContext) -> Pass:
    ws = Workspace(ctx)
    plan = partial(plan_keys, ws, classify_links=ctx.kind == RunKind.MIGRATE)
    return Pass(step=Step.USER_CUSTOMER, phase="keys", source=ctx.db[CUSTOMERS], query={},
                projection=_CUSTOMER_FIELDS, plan=plan, subject=CUSTOMERS)


# -- 2. plan ---------------------------------------------------------------------------------------------------

def _group(keys: list[CustomerKey], attr: str) -> dict[str, list[CustomerKey]]:
    grouped: dict[str, list[CustomerKey]] = {}
    for key in keys:
        grouped.setdefault(getattr(key, attr), []).append(key)
    return grouped


def plan_users(ws: Workspace, batch: list[dict[str, Any]], *, defer_one_sided: bool = False) -> BatchPlan:
    """Classify a page of customer accounts; store proposals, count the rest.

    With `defer_one_sided` (a reconciliation), an account some customer already
    names is left to the repair phases, which have already decided it.
    """
    linked = [u for u in batch if not is_considered(u)]
    considered = [u for u in batch if is_considered(u)]
    by_id = {k.id: k for k in ws.keys_where("id", (u.get(USER_LINK) for u in linked if is_key(u.get(USER_LINK))))
             if is_key(k.id)}
    decisions = [classify_linked_user(u, by_id.get(u[USER_LINK]) if is_key(u.get(USER_LINK)) else None)
                 for u in linked]

    named_by = {k.user_id: k for k in ws.keys_where("user_id", (u.get("id") for u in considered if is_key(u.get("id"))))
                if is_key(k.user_id)}
    phones = {u["_id"]: normalize_phone(u.get("phone")) for u in considered}
    emails = {u["_id"]: normalize_email(u.get("email")) for u in considered}
    by_phone = _group(ws.keys_where("phone", phones.values()), "phone")
    by_email = _group(ws.keys_where("email", emails.values()), "email")
    seen_ids = {k.id for group in (*by_phone.values(), *by_email.values()) for k in group if is_key(k.id)}
    claimed = {u[USER_LINK] for u in ws.db[USERS].find({USER_LINK: {"$in": list(seen_ids)}}, {USER_LINK: 1})
               if is_key(u.get(USER_LINK))} if seen_ids else set()

    proposals: list[ReplaceOne] = []
    customers = {k.id: k for group in (*by_phone.values(), *by_email.values()) for k in group if is_key(k.id)}
    for user in considered:
        named = named_by.get(user["id"]) if is_key(user.get("id")) else None
        if named is not None and defer_one_sided:
            continue
        decision = classify_unlinked_user(user, by_phone, by_email, claimed, named)
        if decision.category != Category.LINKED or decision.link is None:
            decisions.append(decision)
            continue
        customer = customers[decision.link]
        proposal_id = f"{ws.run_id}:{user['_id']}"
        proposals.append(ReplaceOne({"_id": proposal_id}, {
            "_id": proposal_id, "run_id": ws.run_id, "conflict": False,
            "user_oid": user["_id"], "user_id": user["id"],
            "user_old": user.get(USER_LINK), "user_had": USER_LINK in user,
            "customer_oid": customer.oid, "customer_id": customer.id,
            "customer_old": customer.user_id, "customer_had": customer.had_user_id,
        }, upsert=True))
    if proposals:
        ws.plan.bulk_write(proposals, ordered=False)
    return BatchPlan(decisions=decisions, extra={PROPOSED: len(proposals)})


def plan_pass(ctx: StepContext) -> Pass:
    ws = Workspace(ctx)
    query: dict[str, Any] = {"role": "customer"}
    reconcile = ctx.kind == RunKind.RECONCILE
    if reconcile:
        query[USER_LINK] = {"$in": UNSET_VALUES}
    return Pass(step=Step.USER_CUSTOMER, phase="plan", source=ctx.db[USERS], query=query, projection=_USER_FIELDS,
                plan=partial(plan_users, ws, defer_one_sided=reconcile), subject=USERS)


# -- 3. resolve ------------------------------------------------------------------------------------------------

def resolve_batch(ws: Workspace, batch: list[dict[str, Any]]) -> BatchPlan:
    """Proposals of contiguous customers: a customer proposed to two or more users is a conflict for each."""
    per_customer = Counter(p["customer_id"] for p in batch)
    contested = [c for c, n in per_customer.items() if n > 1]
    conflicts = [p for p in batch if p["customer_id"] in contested]
    if contested:
        ws.plan.update_many({"run_id": ws.run_id, "customer_id": {"$in": contested}}, {"$set": {"conflict": True}})
    decisions = [Decision(oid=p["user_oid"], app_id=p["user_id"], category=Category.CONFLICT,
                          reason="customer: matched by more than one user") for p in conflicts]
    return BatchPlan(decisions=decisions, extra={PROPOSED: -len(conflicts)})


def resolve_pass(ctx: StepContext) -> Pass:
    ws = Workspace(ctx)
    return Pass(step=Step.USER_CUSTOMER, phase="resolve", source=ws.plan,
                query={"run_id": ctx.run_id, **by_string("customer_id")}, projection=None,
                plan=partial(resolve_batch, ws), subject=USERS, walk="customer_id")


# -- 4. apply --------------------------------------------------------------------------------------------------

def apply_plan(batch: list[dict[str, Any]]) -> BatchPlan:
    """Both sides of each surviving proposal, as one write group."""
    decisions, writes = [], []
    for p in batch:
        group = str(p["user_oid"])
        decisions.append(Decision(oid=p["user_oid"], app_id=p["user_id"], category=Category.LINKED,
                                  link=p["customer_id"]))
        writes.append(FieldWrite(coll=USERS, oid=p["user_oid"], field=USER_LINK, new=p["customer_id"],
                                 old=p["user_old"], had=p["user_had"], group=group))
        writes.append(FieldWrite(coll=CUSTOMERS, oid=p["customer_oid"], field=CUSTOMER_LINK, new=p["user_id"],
                                 old=p["customer_old"], had=p["customer_had"], group=group))
    return BatchPlan(decisions=decisions, writes=writes, extra={PROPOSED: -len(batch)})


def apply_pass(ctx: StepContext) -> Pass:
    ws = Workspace(ctx)
    return Pass(step=Step.USER_CUSTOMER, phase="apply", source=ws.plan,
                query={"run_id": ctx.run_id, "conflict": False}, projection=None, plan=apply_plan, subject=USERS)


# -- 0. repair (reconciliation) ----------------------------------------------------------------------------------

def _naming(coll: Collection, field: str, values: Iterable[str]) -> Counter[str]:
    """How many documents of `coll` hold each of these values in `field` (one look-up for a few values)."""
    wanted = list(set(values))
    if not wanted:
        return Counter()
    return Counter(d[field] for d in coll.find({field: {"$in": wanted}}, {field: 1}) if isinstance(d.get(field), str))


def repair_from_users(db: Database, batch: list[dict[str, Any]]) -> BatchPlan:
    """Users naming contiguous customers (every user naming one of them is in this batch)."""
    users_naming = Counter(u[USER_LINK] for u in batch)
    customers: dict[str, list[dict[str, Any]]] = {}
    for c in by_keys(db[CUSTOMERS], "id", users_naming, _PAIR_CUSTOMER_FIELDS,
                     range_limit=DENSE_PER_KEY * len(users_naming)):
        customers.setdefault(c["id"], []).append(c)
    repairable = [u for u in batch if len(customers.get(u[USER_LINK], [])) == 1
                  and customers[u[USER_LINK]][0].get(CUSTOMER_LINK) in UNSET_VALUES and is_key(u.get("id"))]
    customers_naming = _naming(db[CUSTOMERS], CUSTOMER_LINK, (u["id"] for u in repairable))
    decisions, writes = [], []
    for user in batch:
        found = customers.get(user[USER_LINK], [])
        user_id = user.get("id")
        decision = classify_from_user(user, found, users_naming_customer=users_naming[user[USER_LINK]],
                                      customers_naming_user=customers_naming[user_id] if is_key(user_id) else 0)
        decisions.append(decision)
        if decision.category == Category.LINKED:
            customer = found[0]
            writes.append(FieldWrite(coll=CUSTOMERS, oid=customer["_id"], field=CUSTOMER_LINK, new=user["id"],
                                     old=customer.get(CUSTOMER_LINK), had=CUSTOMER_LINK in customer,
                                     group=str(user["_id"])))
    return BatchPlan(decisions=decisions, writes=writes)


def repair_from_customers(db: Database, batch: list[dict[str, Any]]) -> BatchPlan:
    """Customers naming contiguous users (every customer naming one of them is in this batch)."""
    customers_naming = Counter(c[CUSTOMER_LINK] for c in batch)
    users: dict[str, list[dict[str, Any]]] = {}
    for u in by_keys(db[USERS], "id", customers_naming, _PAIR_USER_FIELDS,
                     range_limit=DENSE_PER_KEY * len(customers_naming)):
        users.setdefault(u["id"], []).append(u)
    repairable = [c for c in batch if len(users.get(c[CUSTOMER_LINK], [])) == 1
                  and users[c[CUSTOMER_LINK]][0].get(USER_LINK) in UNSET_VALUES and is_key(c.get("id"))]
    users_naming = _naming(db[USERS], USER_LINK, (c["id"] for c in repairable))
    decisions, writes = [], []
    for customer in batch:
        found = users.get(customer[CUSTOMER_LINK], [])
        customer_id = customer.get("id")
        decision = classify_from_customer(
            customer, found, customers_naming_user=customers_naming[customer[CUSTOMER_LINK]],
            users_naming_customer=users_naming[customer_id] if is_key(customer_id) else 0)
        if decision is None:
            continue
        decisions.append(decision)
        if decision.category == Category.LINKED:
            user = found[0]
            writes.append(FieldWrite(coll=USERS, oid=user["_id"], field=USER_LINK, new=customer["id"],
                                     old=user.get(USER_LINK), had=USER_LINK in user, group=str(user["_id"])))
    return BatchPlan(decisions=decisions, writes=writes)


def _repair_pass(ctx: StepContext, phase: str, source: str, field: str, subject: str,
                 plan: Callable[[Database, list[dict[str, Any]]], BatchPlan], projection: dict[str, int]) -> Pass:
    return Pass(step=Step.USER_CUSTOMER, phase=phase, source=ctx.db[source], query=linked(field),
                projection=projection, plan=partial(plan, ctx.db), subject=subject, walk=field)


# -- the step --------------------------------------------------------------------------------------------------

class UserCustomer(StepSpec):
    step = Step.USER_CUSTOMER
    writes = (USERS, CUSTOMERS)
    scratch = {KEYS: [[(field, 1)] for field in ("phone", "email", "id", "user_id", "run_id")],
               PLAN: [[("run_id", 1), ("customer_id", 1)]]}

    def phases(self, kind: RunKind) -> list[Phase]:
        link = [Phase("keys", keys_pass), Phase("plan", plan_pass), Phase("resolve", resolve_pass),
                Phase("apply", apply_pass)]
        if kind == RunKind.MIGRATE:
            return link
        repair = [
            Phase("repair_from_users", partial(_repair_pass, phase="repair_from_users", source=USERS, field=USER_LINK,
                                               subject=USERS, plan=repair_from_users, projection=_PAIR_USER_FIELDS)),
            Phase("repair_from_customers", partial(_repair_pass, phase="repair_from_customers", source=CUSTOMERS,
                                                   field=CUSTOMER_LINK, subject=CUSTOMERS, plan=repair_from_customers,
                                                   projection=_PAIR_CUSTOMER_FIELDS)),
        ]
        return repair + link


SPEC = UserCustomer()
