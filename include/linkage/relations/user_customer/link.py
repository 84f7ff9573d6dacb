"""Migration 003's linking, in four phases over the unlinked customer accounts (CONTRACT §3).

1. `keys`: normalise every customer's phone and email once into a scratch
   collection indexed on the normalised values;
2. `plan`: classify every customer account against those keys, page by page,
   and store each proposed link in the plan (scratch) collection;
3. `resolve`: walk the proposals in customer order and mark those whose
   customer is proposed for more than one user as conflicts (a batch counts the
   customers wholly inside it, and looks up the two at its edges, which the walk
   may split across batches);
4. `apply`: write the surviving proposals, both sides, journaled.

A reconcile first notes what its accounts could match (`wanted`), so its keys
are those, not every customer's. Nothing in `keys`, `plan` and `resolve`
touches the app's collections.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from pymongo import ReplaceOne
from pymongo.collection import Collection

from linkage.core.app_schema import CUSTOMER_LINK, CUSTOMERS, USER_LINK, USERS
from linkage.core.models import CANDIDATE_CAP, Candidate, Category, Ref, Ruling, RunKind
from linkage.core.normalize import is_key, normalize_email, normalize_phone
from linkage.engine.passes import ID, BatchPlan, Pass, by_string
from linkage.mongo import bulk
from linkage.relations.base import Phase, StepContext
from linkage.relations.user_customer.matching import (
    CustomerKey,
    classify_linked_user,
    classify_unlinked_user,
    is_considered,
)
from linkage.relations.user_customer.sides import STEP
from linkage.relations.user_customer.wanted import UNLINKED_ACCOUNTS, Wanted, account_marker, customer_keys
from linkage.store.journal import FieldWrite

KEYS, PLAN = "customer_keys", "link_plan"
PROPOSED = "proposed"
USER_OID = "user_oid"  # a proposal's user, by `_id`: once per run
_USER_FIELDS = {"id": 1, "role": 1, "phone": 1, "email": 1, USER_LINK: 1}
_CUSTOMER_FIELDS = {"id": 1, "phone": 1, "email": 1, CUSTOMER_LINK: 1, "status": 1, "created_at": 1}


class Workspace:
    """The step's scratch collections, for one run; a reconcile's keys and accounts are only the wanted ones."""

    def __init__(self, ctx: StepContext) -> None:
        self.db, self.run_id = ctx.db, ctx.run_id
        self.keys, self.plan = ctx.bookkeeping(KEYS), ctx.bookkeeping(PLAN)
        self.chunk = ctx.write_chunk
        self.wanted = Wanted(ctx) if ctx.kind == RunKind.RECONCILE else None

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
    indexed = batch
    if ws.wanted is not None:
        keys = {c["_id"]: customer_keys(CustomerKey.from_document(c)) for c in batch}
        found = ws.wanted.among(k for ks in keys.values() for k in ks)
        indexed = [c for c in batch if found.intersection(keys[c["_id"]])]
    if indexed:
        bulk.write(ws.keys, [ReplaceOne({"_id": d["_id"]}, d, upsert=True)
                             for d in (_key_document(ws.run_id, c) for c in indexed)], ws.chunk)
    dangling: list[Ruling] = []
    if classify_links:
        existing = _existing_ids(ws.db[USERS], (c[CUSTOMER_LINK] for c in batch if is_key(c.get(CUSTOMER_LINK))))
        dangling = [Ruling(oid=c["_id"], app_id=c.get("id"), category=Category.DANGLING,
                             reason="user_id: names no existing user", missing=c[CUSTOMER_LINK])
                    for c in batch if is_key(c.get(CUSTOMER_LINK)) and c[CUSTOMER_LINK] not in existing]
    return BatchPlan(decisions=dangling, extra={"customers_indexed": len(indexed)})


def keys_pass(ctx: StepContext) -> Pass:
    ws = Workspace(ctx)
    plan = partial(plan_keys, ws, classify_links=ctx.kind == RunKind.MIGRATE)
    return Pass(step=STEP, phase="keys", source=ctx.db[CUSTOMERS], query={},
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
    if ws.wanted is not None:  # only the accounts the wanted phase noted: their candidates are all in the keys
        noted = ws.wanted.among(account_marker(u) for u in considered)
        considered = [u for u in considered if account_marker(u) in noted]
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
    claimed = {u[USER_LINK]: u.get("id") for u in ws.db[USERS].find({USER_LINK: {"$in": list(seen_ids)}},
                                                                    {USER_LINK: 1, "id": 1})
               if is_key(u.get(USER_LINK))} if seen_ids else {}

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
            "candidate": [c.model_dump() for c in decision.candidates],
        }, upsert=True))
    if proposals:
        bulk.write(ws.plan, proposals, ws.chunk)
    return BatchPlan(decisions=decisions, extra={PROPOSED: len(proposals)})


def plan_pass(ctx: StepContext) -> Pass:
    ws = Workspace(ctx)
    reconcile = ctx.kind == RunKind.RECONCILE
    query: dict[str, Any] = dict(UNLINKED_ACCOUNTS) if reconcile else {"role": "customer"}
    return Pass(step=STEP, phase="plan", source=ctx.db[USERS], query=query, projection=_USER_FIELDS,
                plan=partial(plan_users, ws, defer_one_sided=reconcile), subject=USERS)


# -- 3. resolve ------------------------------------------------------------------------------------------------

def _contested(ws: Workspace, batch: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The batch's customers proposed to two or more users, each with its first proposals (`CANDIDATE_CAP` + 1,
    the holders a conflict names). A customer wholly inside the batch is counted there; the first and the last
    may go on in the batches beside it (the walk splits a key), so theirs are read from the plan."""
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for proposal in batch:
        by_customer.setdefault(proposal["customer_id"], []).append(proposal)
    for edge in {batch[0]["customer_id"], batch[-1]["customer_id"]}:
        by_customer[edge] = list(ws.plan.find({"run_id": ws.run_id, "customer_id": edge}, {"user_id": 1})
                                 .sort(USER_OID, 1).limit(CANDIDATE_CAP + 1))
    return {customer: proposals for customer, proposals in by_customer.items() if len(proposals) > 1}


def resolve_batch(ws: Workspace, batch: list[dict[str, Any]]) -> BatchPlan:
    """Proposals of contiguous customers (one customer's perhaps split across batches): a customer proposed to
    two or more users is a conflict for each, naming (at most `CANDIDATE_CAP` of) the others."""
    contested = _contested(ws, batch)
    conflicts = [p for p in batch if p["customer_id"] in contested]
    if conflicts:  # this batch's own: each of a contested customer's proposals is in some batch
        ws.plan.update_many({ID: {"$in": [p[ID] for p in conflicts]}}, {"$set": {"conflict": True}})
    decisions = [Ruling(oid=p["user_oid"], app_id=p["user_id"], category=Category.CONFLICT,
                          reason="customer: matched by more than one user",
                          candidates=tuple(Candidate.model_validate(c) for c in p.get("candidate", [])),
                          holders=tuple(Ref(collection=USERS, id=q["user_id"]) for q in contested[p["customer_id"]]
                                        if q[ID] != p[ID] and is_key(q["user_id"]))[:CANDIDATE_CAP])
                 for p in conflicts]
    return BatchPlan(decisions=decisions, extra={PROPOSED: -len(conflicts)})


def resolve_pass(ctx: StepContext) -> Pass:
    """Proposals in (customer, user) order: a customer proposed to more users than a batch holds (one phone shared
    by a crowd) is split across batches, each deciding its own slice (a run proposes a user once: the pair is
    unique, and `{run_id, customer_id, user_oid}` indexes the walk)."""
    ws = Workspace(ctx)
    return Pass(step=STEP, phase="resolve", source=ws.plan,
                query={"run_id": ctx.run_id, **by_string("customer_id")}, projection=None,
                plan=partial(resolve_batch, ws), subject=USERS, walk="customer_id", tiebreak=USER_OID)


# -- 4. apply --------------------------------------------------------------------------------------------------

def apply_plan(batch: list[dict[str, Any]]) -> BatchPlan:
    """Both sides of each surviving proposal, as one write group."""
    decisions, writes = [], []
    for p in batch:
        group = str(p["user_oid"])
        decisions.append(Ruling(oid=p["user_oid"], app_id=p["user_id"], category=Category.LINKED,
                                  link=p["customer_id"]))
        writes.append(FieldWrite(coll=USERS, oid=p["user_oid"], field=USER_LINK, new=p["customer_id"],
                                 old=p["user_old"], had=p["user_had"], group=group))
        writes.append(FieldWrite(coll=CUSTOMERS, oid=p["customer_oid"], field=CUSTOMER_LINK, new=p["user_id"],
                                 old=p["customer_old"], had=p["customer_had"], group=group))
    return BatchPlan(decisions=decisions, writes=writes, extra={PROPOSED: -len(batch)})


def apply_pass(ctx: StepContext) -> Pass:
    ws = Workspace(ctx)
    return Pass(step=STEP, phase="apply", source=ws.plan,
                query={"run_id": ctx.run_id, "conflict": False}, projection=None, plan=apply_plan, subject=USERS)


LINK_PHASES = [Phase("keys", keys_pass), Phase("plan", plan_pass), Phase("resolve", resolve_pass),
               Phase("apply", apply_pass)]
