"""Migration 003: link `users.customer_v2_id` and `customers_v2.user_id` (SPEC §3).

Phones and emails are stored in many shapes, so the raw `{phone: 1}` index cannot
find a user's candidates safely (a missed shape could hide a second candidate and
turn an ambiguous user into a wrong link). The step therefore runs in phases:

1. `keys`: normalise every customer's phone and email once into a bookkeeping
   collection indexed on the normalised values;
2. `plan`: classify every customer account against those keys, page by page,
   and store each proposed link in the plan collection;
3. `resolve`: mark proposals whose customer is proposed for more than one user
   as conflicts (a rule that needs the whole scan, done by a `$group` on the
   server, not in memory);
4. `apply`: write the surviving proposals, both sides, journaled;
5. `repair` (reconciliation only): complete one-sided pairs from the open review
   items, where the unset side can take the link without breaking uniqueness.

Nothing in phases 1-3 touches the app's collections.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ReplaceOne
from pymongo.collection import Collection
from pymongo.database import Database

from linkage.engine import BatchPlan, Pass, RunContext
from linkage.journal import UNSET_VALUES, BatchRecord, FieldWrite
from linkage.matching.user_customer import (
    CustomerKey,
    classify_linked_user,
    classify_unlinked_user,
    is_considered,
)
from linkage.models import Category, Decision, Step
from linkage.normalize import is_key, normalize_email, normalize_phone

USERS, CUSTOMERS = "users", "customers_v2"
USER_LINK, CUSTOMER_LINK = "customer_v2_id", "user_id"
PROPOSED = "proposed"
_USER_FIELDS = {"id": 1, "role": 1, "phone": 1, "email": 1, USER_LINK: 1}
_CUSTOMER_FIELDS = {"id": 1, "phone": 1, "email": 1, CUSTOMER_LINK: 1}


class Workspace:
    """The bookkeeping collections of this step for one run."""

    def __init__(self, db: Database, keys: Collection, plan: Collection, run_id: str) -> None:
        self.db, self.keys, self.plan, self.run_id = db, keys, plan, run_id

    def ensure_indexes(self) -> None:
        for name in ("phone", "email", "id", "user_id", "run_id"):
            self.keys.create_index(name)
        self.plan.create_index([("run_id", 1), ("customer_id", 1)])

    def keys_where(self, field: str, values: Iterable[Any]) -> list[CustomerKey]:
        wanted = list({v for v in values if v is not None})
        if not wanted:
            return []
        return [CustomerKey.model_validate(doc) for doc in self.keys.find({field: {"$in": wanted}, "run_id": self.run_id})]


def _key_document(run_id: str, customer: dict[str, Any]) -> dict[str, Any]:
    key = CustomerKey.from_document(customer)
    return {**key.model_dump(), "_id": f"{run_id}:{customer['_id']}", "run_id": run_id}


def keys_pass(ws: Workspace) -> Pass:
    """Normalise every customer into the keys; a customer naming a user who does not
    exist is `dangling` (recorded for review, so validation knows it predates the run)."""
    def plan(batch: list[dict[str, Any]]) -> BatchPlan:
        docs = [_key_document(ws.run_id, c) for c in batch]
        ws.keys.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs], ordered=False)
        named = list({c[CUSTOMER_LINK] for c in batch if is_key(c.get(CUSTOMER_LINK))})
        existing = {u["id"] for u in ws.db[USERS].find({"id": {"$in": named}}, {"id": 1}) if is_key(u.get("id"))} if named else set()
        dangling = [Decision(oid=c["_id"], app_id=c.get("id"), category=Category.DANGLING,
                             reason="user_id: names no existing user")
                    for c in batch if is_key(c.get(CUSTOMER_LINK)) and c[CUSTOMER_LINK] not in existing]
        return BatchPlan(decisions=dangling, extra={"customers_indexed": len(batch)})

    return Pass(step=Step.USER_CUSTOMER, phase="keys", source=ws.db[CUSTOMERS], query={},
                projection=_CUSTOMER_FIELDS, plan=plan, subject=CUSTOMERS)


def _group(keys: list[CustomerKey], attr: str) -> dict[str, list[CustomerKey]]:
    grouped: dict[str, list[CustomerKey]] = {}
    for key in keys:
        grouped.setdefault(getattr(key, attr), []).append(key)
    return grouped


def plan_users(ws: Workspace, batch: list[dict[str, Any]]) -> BatchPlan:
    """Classify a page of customer accounts; store proposals, count the rest."""
    linked = [u for u in batch if not is_considered(u)]
    considered = [u for u in batch if is_considered(u)]
    by_id = {k.id: k for k in ws.keys_where("id", (u.get(USER_LINK) for u in linked if is_key(u.get(USER_LINK))))
             if is_key(k.id)}
    decisions = [classify_linked_user(u, by_id.get(u[USER_LINK]) if is_key(u.get(USER_LINK)) else None) for u in linked]

    named_by = {k.user_id: k for k in ws.keys_where("user_id", (u.get("id") for u in considered if is_key(u.get("id"))))
                if is_key(k.user_id)}
    phones = {u["_id"]: normalize_phone(u.get("phone")) for u in considered}
    emails = {u["_id"]: normalize_email(u.get("email")) for u in considered}
    by_phone = _group(ws.keys_where("phone", phones.values()), "phone")
    by_email = _group(ws.keys_where("email", emails.values()), "email")
    seen_ids = [k.id for group in (*by_phone.values(), *by_email.values()) for k in group if is_key(k.id)]
    claimed = {u[USER_LINK] for u in ws.db[USERS].find({USER_LINK: {"$in": list(set(seen_ids))}}, {USER_LINK: 1})
               if is_key(u.get(USER_LINK))} if seen_ids else set()

    proposals: list[ReplaceOne] = []
    customers = {k.id: k for group in (*by_phone.values(), *by_email.values()) for k in group if is_key(k.id)}
    for user in considered:
        decision = classify_unlinked_user(user, by_phone, by_email, claimed,
                                          named_by.get(user["id"]) if is_key(user.get("id")) else None)
        if decision.category != Category.LINKED:
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


def plan_pass(ws: Workspace, *, only_unlinked: bool = False) -> Pass:
    query: dict[str, Any] = {"role": "customer"}
    if only_unlinked:
        query[USER_LINK] = {"$in": UNSET_VALUES}
    return Pass(step=Step.USER_CUSTOMER, phase="plan", source=ws.db[USERS], query=query,
                projection=_USER_FIELDS, plan=lambda batch: plan_users(ws, batch), subject=USERS)


def resolve_conflicts(ctx: RunContext, ws: Workspace) -> dict[str, int]:
    """Mark every proposal whose customer is proposed to two or more users.

    Done once per run (its journal record makes a resumed run skip it).
    """
    step, phase = Step.USER_CUSTOMER, "resolve"
    done = ctx.journal.last(ctx.run_id, step, phase, 0)
    if done is not None:
        return done.counts
    duplicated = [row["_id"] for row in ws.plan.aggregate([
        {"$match": {"run_id": ws.run_id}},
        {"$group": {"_id": "$customer_id", "n": {"$sum": 1}}},
        {"$match": {"n": {"$gt": 1}}},
    ])]
    conflicts: list[Decision] = []
    for start in range(0, len(duplicated), ctx.batch_size):
        chunk = duplicated[start:start + ctx.batch_size]
        for proposal in ws.plan.find({"run_id": ws.run_id, "customer_id": {"$in": chunk}}):
            conflicts.append(Decision(oid=proposal["user_oid"], app_id=proposal["user_id"], category=Category.CONFLICT,
                                      reason="customer: matched by more than one user"))
        ws.plan.update_many({"run_id": ws.run_id, "customer_id": {"$in": chunk}}, {"$set": {"conflict": True}})
    ctx.reviews.record(ctx.run_id, step, USERS, conflicts)
    counts = {Category.CONFLICT.value: len(conflicts), PROPOSED: -len(conflicts)}
    ctx.journal.settle(BatchRecord(_id=f"{ctx.run_id}:{step}:{phase}:0:0000000", run_id=ctx.run_id, step=step,
                                   phase=phase, partition=0, seq=0, counts=counts))
    return counts


def apply_plan(ws: Workspace, batch: list[dict[str, Any]]) -> BatchPlan:
    """Both sides of each surviving proposal, as one write group."""
    decisions, writes = [], []
    for p in batch:
        group = str(p["user_oid"])
        decisions.append(Decision(oid=p["user_oid"], app_id=p["user_id"], category=Category.LINKED, link=p["customer_id"]))
        writes.append(FieldWrite(coll=USERS, oid=p["user_oid"], field=USER_LINK, new=p["customer_id"],
                                 old=p["user_old"], had=p["user_had"], group=group))
        writes.append(FieldWrite(coll=CUSTOMERS, oid=p["customer_oid"], field=CUSTOMER_LINK, new=p["user_id"],
                                 old=p["customer_old"], had=p["customer_had"], group=group))
    return BatchPlan(decisions=decisions, writes=writes, extra={PROPOSED: -len(batch)})


def apply_pass(ws: Workspace) -> Pass:
    return Pass(step=Step.USER_CUSTOMER, phase="apply", source=ws.plan,
                query={"run_id": ws.run_id, "conflict": False}, projection=None,
                plan=lambda batch: apply_plan(ws, batch), subject=USERS)


def repair_one_sided(db: Database, batch: list[dict[str, Any]]) -> BatchPlan:
    """Complete one-sided pairs (review items), each re-checked against live data."""
    users = {u["_id"]: u for u in db[USERS].find({"_id": {"$in": [i["document_oid"] for i in batch]}}, _USER_FIELDS)}
    customer_ids = [i["candidate"] for i in batch if is_key(i.get("candidate"))]
    customers = {c["id"]: c for c in db[CUSTOMERS].find({"id": {"$in": customer_ids}}, _CUSTOMER_FIELDS) if is_key(c.get("id"))}
    holders_of_customer = {u[USER_LINK]: u["_id"] for u in db[USERS].find({USER_LINK: {"$in": customer_ids}}, {USER_LINK: 1})
                           if is_key(u.get(USER_LINK))}
    user_ids = [u["id"] for u in users.values() if is_key(u.get("id"))]
    holders_of_user = {c[CUSTOMER_LINK]: c["_id"] for c in db[CUSTOMERS].find({CUSTOMER_LINK: {"$in": user_ids}}, {CUSTOMER_LINK: 1})
                       if is_key(c.get(CUSTOMER_LINK))}
    decisions, writes = [], []
    for item in batch:
        user = users.get(item["document_oid"])
        customer = customers.get(item["candidate"]) if is_key(item.get("candidate")) else None
        base = {"oid": item["document_oid"], "app_id": item.get("document_id")}
        if user is None or customer is None:
            decisions.append(Decision(**base, category=Category.DANGLING))
            continue
        user_side, customer_side = user.get(USER_LINK), customer.get(CUSTOMER_LINK)
        group = str(user["_id"])
        if user_side == customer["id"] and customer_side == user["id"]:
            decisions.append(Decision(**base, category=Category.ALREADY_LINKED))
        elif user_side == customer["id"] and customer_side in (None, "") and \
                holders_of_user.get(user["id"], customer["_id"]) == customer["_id"]:
            decisions.append(Decision(**base, category=Category.LINKED, link=customer["id"]))
            writes.append(FieldWrite(coll=CUSTOMERS, oid=customer["_id"], field=CUSTOMER_LINK, new=user["id"],
                                     old=customer_side, had=CUSTOMER_LINK in customer, group=group))
        elif customer_side == user["id"] and user_side in (None, "") and \
                holders_of_customer.get(customer["id"], user["_id"]) == user["_id"]:
            decisions.append(Decision(**base, category=Category.LINKED, link=customer["id"]))
            writes.append(FieldWrite(coll=USERS, oid=user["_id"], field=USER_LINK, new=customer["id"],
                                     old=user_side, had=USER_LINK in user, group=group))
        else:
            decisions.append(Decision(**base, category=Category.ONE_SIDED, link=customer["id"],
                                      reason="the unset side cannot take the link without breaking uniqueness"))
    return BatchPlan(decisions=decisions, writes=writes)


def repair_pass(ws: Workspace, reviews: Collection) -> Pass:
    return Pass(step=Step.USER_CUSTOMER, phase="repair", source=reviews,
                query={"status": "open", "step": Step.USER_CUSTOMER.value, "category": Category.ONE_SIDED.value},
                projection=None, plan=lambda batch: repair_one_sided(ws.db, batch), subject=USERS)
