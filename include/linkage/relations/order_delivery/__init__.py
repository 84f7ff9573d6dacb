"""Migration 002: set `delivery_statuses.order_id` where the rules justify it (CONTRACT §3).

Two passes. `link` walks the delivery statuses in `(customer_id, _id)` order, so a
batch covers a contiguous run of customers and their candidate orders are one
index range (`orders {customer_id: 1, delivery_date: 1}`), read once per batch:
the backfill stays linear in the collection on every server. A customer with more
deliveries than a batch (a shared guest account) is split across batches, each
reading only the orders its days could match (`candidate_orders`): a delivery's
decision depends on its own (customer, day) candidates alone. `unkeyed` walks the
rest in `_id` order (no string `customer_id`): nothing to link there, only to
count as `invalid`, `already_linked` or `dangling`.

A reconciliation reads only the unlinked delivery statuses, in one pass
through the `order_id` index; links the app deleted the order of are found by validation,
whose rules for this relation (every set `order_id` is one string naming an
existing order, and the coverage) are declared here with the walk that
measures them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.collection import Collection
from pymongo.database import Database

from linkage.core.app_schema import DELIVERIES, ORDER_LINK, ORDERS, UNSET_VALUES
from linkage.core.comparing import Comparator
from linkage.core.models import Category, RunKind
from linkage.core.normalize import is_key
from linkage.engine.coverage import Relation
from linkage.engine.passes import ID, BatchPlan, Pass, by_string, not_by_string, pages
from linkage.mongo.indexes import IndexSpec
from linkage.mongo.lookups import DENSE_PER_KEY, by_keys
from linkage.relations.base import Phase, StepContext, StepSpec, Subject
from linkage.relations.checks import CHUNK, Check, Finding, LinkCounts, Strays, link_value, link_walk
from linkage.relations.order_delivery.day_query import could_be_days
from linkage.relations.order_delivery.matching import (
    ORDER_FIELDS,
    DeliveryKey,
    classify_delivery,
    compare_order,
    delivery_facts,
    delivery_key,
    index_orders,
)
from linkage.relations.rules import Rule, RuleKind, Threshold
from linkage.store.journal import FieldWrite

STEP = "order_delivery"
CUSTOMER = "customer_id"
LINK_PHASE, UNKEYED_PHASE = "link", "unkeyed"
_DELIVERY_FIELDS = {"id": 1, CUSTOMER: 1, "delivery_date": 1, ORDER_LINK: 1}
_ORDER_FIELDS = {"id": 1, CUSTOMER: 1, "delivery_date": 1, "status": 1, "created_at": 1}

DELIVERY_ORDERS = Relation(collection=DELIVERIES, field=ORDER_LINK, counts="delivery statuses")
ORDER_REFS_DANGLING = Rule(name="order_refs_dangling", step=STEP, kind=RuleKind.INTEGRITY,
                           description="every set delivery_statuses.order_id names an existing order")
ORDER_LINKS_NOT_SINGLE = Rule(name="order_links_not_single", step=STEP, kind=RuleKind.INTEGRITY,
                              description="each delivery links to one order: a set order_id is a single string")
ORDER_COVERAGE = Rule(
    name="order_coverage", step=STEP, kind=RuleKind.COVERAGE, relation=DELIVERY_ORDERS,
    description="share of delivery statuses linked to an order",
    threshold=Threshold(parameter="min_order_coverage", title="Minimum order-link coverage",
                        description="Share of delivery statuses that must carry an order_id after the run."))


def existing_order_ids(orders: Collection, named: set[str], fetched: list[dict[str, Any]]) -> set[str]:
    """Which of the order ids the batch's links name exist (most are among the orders already read)."""
    found = {o["id"] for o in fetched if is_key(o.get("id")) and o["id"] in named}
    rest = list(named - found)
    if rest:
        found |= {o["id"] for o in orders.find({"id": {"$in": rest}}, {"id": 1}) if is_key(o.get("id"))}
    return found


def candidate_orders(db: Database, tz: ZoneInfo, batch: list[dict[str, Any]], *,
                     contiguous: bool) -> list[dict[str, Any]]:
    """The orders of a batch's customers that hold every candidate of its deliveries, in bounded memory.

    Contiguous customers are one index range when it is small; a range too big for the batch (a hot
    customer: a batch may hold a slice of its deliveries) reads only the orders whose date could be one of
    the batch's days (`linkage.relations.order_delivery.day_query`), and, like a reconcile's `$in`, keeps only
    those whose (customer, day) a delivery of the batch has: a missed candidate would be a wrong link.
    """
    customer_ids = {d[CUSTOMER] for d in batch if is_key(d.get(CUSTOMER))}
    wanted: set[DeliveryKey] = {key for d in batch if isinstance(key := delivery_key(d, tz), tuple)}
    days = could_be_days("delivery_date", {day for _, day in wanted}, tz) if contiguous else None
    return by_keys(db[ORDERS], CUSTOMER, customer_ids, _ORDER_FIELDS,
                   range_limit=DENSE_PER_KEY * len(batch) if contiguous else None, narrowed=days,
                   keep=lambda order: delivery_key(order, tz) in wanted)


def plan_batch(db: Database, tz: ZoneInfo, batch: list[dict[str, Any]], *, contiguous: bool = True) -> BatchPlan:
    """Decide a page of delivery statuses from one read of their customers' orders.

    `contiguous`: the batch's customers are contiguous in the walk, so their orders are one index range;
    otherwise (a reconcile's few unlinked deliveries, walked by `_id`) they are looked up by key.
    """
    fetched = candidate_orders(db, tz, batch, contiguous=contiguous)
    named = {d[ORDER_LINK] for d in batch if is_key(d.get(ORDER_LINK))}
    existing = existing_order_ids(db[ORDERS], named, fetched) if named else set()
    candidates = index_orders(fetched, tz)
    decisions = [classify_delivery(doc, tz, candidates, existing) for doc in batch]
    originals = {doc[ID]: doc for doc in batch}
    writes = [
        FieldWrite(coll=DELIVERIES, oid=d.oid, field=ORDER_LINK, new=d.link,
                   old=originals[d.oid].get(ORDER_LINK), had=ORDER_LINK in originals[d.oid], group=str(d.oid))
        for d in decisions if d.category == Category.LINKED and d.link
    ]
    return BatchPlan(decisions=decisions, writes=writes)


def _pass(ctx: StepContext, phase: str) -> Pass:
    """The pass of one phase of a migration over every delivery status."""
    keyed = phase == LINK_PHASE
    return Pass(step=STEP, phase=phase, source=ctx.db[DELIVERIES],
                query=by_string(CUSTOMER) if keyed else not_by_string(CUSTOMER), projection=_DELIVERY_FIELDS,
                plan=lambda batch: plan_batch(ctx.db, ctx.tz, batch), subject=DELIVERIES,
                unlanded=Category.ALREADY_LINKED, walk=CUSTOMER if keyed else ID, tiebreak=ID if keyed else None)


def unlinked_pass(ctx: StepContext) -> Pass:
    """A reconciliation's one pass: the unlinked delivery statuses alone, found through the `order_id` index and
    walked by `_id` (few and spread thin, their orders are looked up by key; a non-string customer_id is
    `invalid` here as in the migration's `unkeyed` phase)."""
    return Pass(step=STEP, phase=LINK_PHASE, source=ctx.db[DELIVERIES], query={ORDER_LINK: {"$in": UNSET_VALUES}},
                projection=_DELIVERY_FIELDS, plan=partial(plan_batch, ctx.db, ctx.tz, contiguous=False),
                subject=DELIVERIES, unlanded=Category.ALREADY_LINKED)


# -- a person's decision -------------------------------------------------------------------------------------

def order_link_check(db: Database, pairs: Sequence[tuple[Mapping[str, Any], str]]) -> list[str | None]:
    """A delivery decided onto an existing order: beyond the ambiguity a person resolved, the order must be
    the delivery's customer's (when the delivery names one): never a link to someone else's order."""
    owners = {o["id"]: o.get(CUSTOMER) for o in by_keys(db[ORDERS], "id", {t for _, t in pairs}, {CUSTOMER: 1},
                                                          range_limit=None)}
    return [f"{ORDER_LINK}: that order is another customer's"
            if is_key(doc.get(CUSTOMER)) and owners.get(target) != doc[CUSTOMER] else None for doc, target in pairs]


# -- validation ------------------------------------------------------------------------------------------------

def order_findings(db: Database, linked: LinkCounts) -> Iterator[list[Finding]]:
    """Every set `order_id` is one string naming an existing order; the walk counts the linked deliveries.

    The walk and the join read the link values alone (no `_id`: a narrower read than the link fields'
    own); only the deliveries naming a missing order are read again, whole enough to be reported. The
    walk reads every set value, so the scan for those that are not a single string runs only on a night
    that has one (it would cost a third read of the collection every night)."""
    strays = Strays()
    for chunk in link_walk(db, DELIVERIES, ORDER_LINK, {"_id": 0, ORDER_LINK: 1}, strays):
        linked[DELIVERY_ORDERS.name] += len(chunk)
        named = {d[ORDER_LINK] for d in chunk}
        existing = {o["id"] for o in by_keys(db[ORDERS], "id", named, {"_id": 0},
                                             range_limit=DENSE_PER_KEY * len(named))}
        missing = named - existing
        if missing:  # one index range within this chunk's values (an array holding one is not single: below)
            yield [Finding(ORDER_REFS_DANGLING, DELIVERIES, d["_id"], d.get("id"),
                           (link_value(DELIVERIES, d, ORDER_LINK),), Category.DANGLING,
                           "order_id: names no existing order")
                   for d in by_keys(db[DELIVERIES], ORDER_LINK, missing, {"id": 1}, range_limit=len(chunk))]
    if not strays.met:
        return
    not_single = {"$and": [{ORDER_LINK: {"$nin": UNSET_VALUES}}, not_by_string(ORDER_LINK)]}
    for chunk in pages(db[DELIVERIES].find(not_single, {"id": 1}).batch_size(CHUNK), CHUNK):
        yield [Finding(ORDER_LINKS_NOT_SINGLE, DELIVERIES, d["_id"], d.get("id"), (), Category.INVALID,
                       "order_id: not a single string") for d in chunk]


class OrderDelivery(StepSpec):
    id = STEP
    label = "002: delivery statuses -> orders"
    reads = (DELIVERIES, ORDERS)
    writes = (DELIVERIES,)
    indexes = (
        IndexSpec(collection=DELIVERIES, keys=[(ORDER_LINK, 1)]),
        IndexSpec(collection=DELIVERIES, keys=[(CUSTOMER, 1), ("delivery_date", 1)]),
        IndexSpec(collection=DELIVERIES, keys=[(CUSTOMER, 1), (ID, 1)], order_only=True),  # beyond §4: `link`'s walk
        IndexSpec(collection=ORDERS, keys=[(CUSTOMER, 1), ("delivery_date", 1)]),
        IndexSpec(collection=ORDERS, keys=[("id", 1)]),  # beyond §4: existence checks of order_id
    )
    rules = (ORDER_REFS_DANGLING, ORDER_LINKS_NOT_SINGLE, ORDER_COVERAGE)
    checks = (Check("order_links", measures=(ORDER_REFS_DANGLING, ORDER_LINKS_NOT_SINGLE), walk=order_findings,
                    counts=(DELIVERY_ORDERS,)),)
    relations = (DELIVERY_ORDERS,)
    subjects = (Subject(collection=DELIVERIES, link=ORDER_LINK, target=ORDERS, keys=(CUSTOMER, "delivery_date"),
                        check=order_link_check),)
    comparators = (Comparator(collection=DELIVERIES, target=ORDERS, fields=ORDER_FIELDS, facts=delivery_facts,
                              compare=compare_order),)

    def phases(self, kind: RunKind) -> list[Phase]:
        if kind == RunKind.RECONCILE:
            return [Phase(LINK_PHASE, unlinked_pass)]
        return [Phase(name, partial(_pass, phase=name)) for name in (LINK_PHASE, UNKEYED_PHASE)]


SPEC = OrderDelivery()
