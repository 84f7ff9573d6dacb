"""The nightly repair of one-sided pairs (CONTRACT §6a), one pass per side, written once for a `Side`.

A pass walks the side's documents whose link is set, in the order of that link,
so that every document naming the same target sits in one batch; it joins them
to their targets and sets a target's unset `back` field when nobody else claims
either side. Which decision that is, and on which document it is reported, is
the matching rules' (`classify_from_user`, `classify_from_customer`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from linkage.app_schema import UNSET_VALUES
from linkage.engine import BatchPlan, Pass, linked
from linkage.journal import FieldWrite
from linkage.lookups import DENSE_PER_KEY, by_keys
from linkage.matching.user_customer import classify_from_customer, classify_from_user
from linkage.models import Category, Decision
from linkage.normalize import is_key
from linkage.steps.base import Phase, StepContext
from linkage.steps.user_customer.sides import CUSTOMER_SIDE, STEP, USER_SIDE, Side

#: (document, its targets, how many documents of its side name the same target, how many targets name it).
Classify = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]], int, int], Decision | None]


def _naming(coll: Collection, field: str, values: Iterable[str]) -> Counter[str]:
    """How many documents of `coll` hold each of these values in `field` (one look-up for a few values)."""
    wanted = list(set(values))
    if not wanted:
        return Counter()
    return Counter(d[field] for d in coll.find({field: {"$in": wanted}}, {field: 1}) if isinstance(d.get(field), str))


def repair_batch(db: Database, side: Side, classify: Classify, batch: list[dict[str, Any]]) -> BatchPlan:
    """Documents naming contiguous targets (every document naming one of them is in this batch)."""
    naming_target = Counter(d[side.field] for d in batch)
    targets: dict[str, list[dict[str, Any]]] = {}
    for t in by_keys(db[side.target], "id", naming_target, {"id": 1, side.back: 1},
                     range_limit=DENSE_PER_KEY * len(naming_target)):
        targets.setdefault(t["id"], []).append(t)
    repairable = [d for d in batch if len(targets.get(d[side.field], [])) == 1
                  and targets[d[side.field]][0].get(side.back) in UNSET_VALUES and is_key(d.get("id"))]
    naming_doc = _naming(db[side.target], side.back, (d["id"] for d in repairable))
    decisions, writes = [], []
    for doc in batch:
        found = targets.get(doc[side.field], [])
        decision = classify(doc, found, naming_target[doc[side.field]], naming_doc[doc["id"]] if is_key(doc.get("id"))
                            else 0)
        if decision is None:
            continue
        decisions.append(decision)
        if decision.category == Category.LINKED:
            target = found[0]
            writes.append(FieldWrite(coll=side.target, oid=target["_id"], field=side.back, new=doc["id"],
                                     old=target.get(side.back), had=side.back in target, group=str(decision.oid)))
    return BatchPlan(decisions=decisions, writes=writes)


def _from_user(user: Mapping[str, Any], customers: Sequence[Mapping[str, Any]], same: int, naming: int) -> Decision:
    return classify_from_user(user, customers, users_naming_customer=same, customers_naming_user=naming)


def _from_customer(customer: Mapping[str, Any], users: Sequence[Mapping[str, Any]], same: int,
                   naming: int) -> Decision | None:
    return classify_from_customer(customer, users, customers_naming_user=same, users_naming_customer=naming)


def repair_pass(ctx: StepContext, phase: str, side: Side, classify: Classify) -> Pass:
    return Pass(step=STEP, phase=phase, source=ctx.db[side.source], query=linked(side.field),
                projection={"id": 1, side.field: 1}, plan=partial(repair_batch, ctx.db, side, classify),
                subject=side.source, walk=side.field)


REPAIR_PHASES = [Phase(name, partial(repair_pass, phase=name, side=side, classify=classify))
                 for name, side, classify in (("repair_from_users", USER_SIDE, _from_user),
                                              ("repair_from_customers", CUSTOMER_SIDE, _from_customer))]
