"""The nightly repair of one-sided pairs (CONTRACT §6a), one pass per side, written once for a `Side`.

A one-sided pair has an unset side, so a pass walks the *open* documents of the
target collection (their `back` field unset: an index-backed query, few on a
linked database) and fetches the documents of the side that name them, by
their link field's index. Its cost follows the drift, not the database, and
the link fields as a whole are read once a night, by validation. Each claimant
is decided once, in the batch of the first (by `_id` key) open document it
names: it could name an `id` that several documents share. It sets the open
document's `back` field when nobody else claims either side; which decision
that is, and on which document it is reported, is the matching rules'
(`classify_from_user`, `classify_from_customer`). Links that are set on both
sides but wrong (dangling, duplicated, disagreeing) are validation's findings:
there is nothing to repair in them, only something to review.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from linkage.core.app_schema import UNSET_VALUES
from linkage.core.keys import id_key
from linkage.core.models import Category, Ruling
from linkage.core.normalize import is_key
from linkage.engine.passes import BatchPlan, Pass
from linkage.mongo.lookups import by_keys
from linkage.relations.base import Phase, StepContext
from linkage.relations.user_customer.matching import classify_from_customer, classify_from_user
from linkage.relations.user_customer.sides import CUSTOMER_SIDE, STEP, USER_SIDE, Side
from linkage.store.journal import FieldWrite

#: (document, its targets, how many documents of its side name the same target, how many targets name it).
Classify = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]], int, int], Ruling | None]


def _naming(coll: Collection, field: str, values: Iterable[str]) -> Counter[str]:
    """How many documents of `coll` hold each of these values in `field` (one look-up for a few values)."""
    wanted = list(set(values))
    if not wanted:
        return Counter()
    return Counter(d[field] for d in coll.find({field: {"$in": wanted}}, {field: 1}) if isinstance(d.get(field), str))


def _first_open(targets: Sequence[Mapping[str, Any]], back: str) -> str | None:
    """The `_id` key of the first open document among those sharing an `id` (where its claimants are decided)."""
    return min((id_key(t["_id"]) for t in targets if t.get(back) in UNSET_VALUES), default=None)


def repair_batch(db: Database, side: Side, classify: Classify, batch: list[dict[str, Any]]) -> BatchPlan:
    """Open documents of `side.target`: decide every document of `side.source` that names one of them."""
    claimants = by_keys(db[side.source], side.field, (d.get("id") for d in batch if is_key(d.get("id"))),
                        {"id": 1, side.field: 1}, range_limit=None)
    naming_target = Counter(d[side.field] for d in claimants)
    targets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in by_keys(db[side.target], "id", naming_target, {"id": 1, side.back: 1}, range_limit=None):
        targets[t["id"]].append(t)
    here = {id_key(d["_id"]) for d in batch}
    claimants = [d for d in claimants if _first_open(targets[d[side.field]], side.back) in here]
    repairable = [d for d in claimants if len(targets[d[side.field]]) == 1 and is_key(d.get("id"))]
    naming_doc = _naming(db[side.target], side.back, (d["id"] for d in repairable))
    decisions, writes = [], []
    for doc in claimants:
        found = targets[doc[side.field]]
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


def _from_user(user: Mapping[str, Any], customers: Sequence[Mapping[str, Any]], same: int, naming: int) -> Ruling:
    return classify_from_user(user, customers, users_naming_customer=same, customers_naming_user=naming)


def _from_customer(customer: Mapping[str, Any], users: Sequence[Mapping[str, Any]], same: int,
                   naming: int) -> Ruling | None:
    return classify_from_customer(customer, users, customers_naming_user=same, users_naming_customer=naming)


def repair_pass(ctx: StepContext, phase: str, side: Side, classify: Classify) -> Pass:
    return Pass(step=STEP, phase=phase, source=ctx.db[side.target], query={side.back: {"$in": UNSET_VALUES}},
                projection={"id": 1, side.back: 1}, plan=partial(repair_batch, ctx.db, side, classify),
                subject=side.source)


REPAIR_PHASES = [Phase(name, partial(repair_pass, phase=name, side=side, classify=classify))
                 for name, side, classify in (("repair_from_users", USER_SIDE, _from_user),
                                              ("repair_from_customers", CUSTOMER_SIDE, _from_customer))]
