"""A third relation, defined in the tests alone: "an order has a customer" (orders.customer_id -> customers_v2.id).

Everything linkage needs to know of a relation is here, in one module, as `StepSpec` asks: its phase, what it
writes, its index, its rules and the check that measures them, its coverage and threshold. It confirms each
order's `customer_id` against the customer profiles and records the confirmed link in `orders.customer_v2_ref`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from pymongo.database import Database

from linkage.core.models import Category, Ruling, RunKind
from linkage.core.normalize import is_key, is_unset
from linkage.engine.coverage import Relation
from linkage.engine.passes import BatchPlan, Pass
from linkage.mongo.indexes import IndexSpec
from linkage.relations.base import Phase, StepContext, StepSpec
from linkage.relations.checks import Check, Finding, LinkCounts, link_value, link_walk
from linkage.relations.rules import Rule, RuleKind, Threshold
from linkage.store.journal import FieldWrite

STEP, ORDERS, CUSTOMERS, LINK = "order_customer", "orders", "customers_v2", "customer_v2_ref"
ORDER_CUSTOMERS = Relation(collection=ORDERS, field=LINK, counts="orders")
DANGLING = Rule(name="order_customer_refs_dangling", step=STEP, kind=RuleKind.INTEGRITY,
                description="every set orders.customer_v2_ref names an existing customer")
COVERAGE = Rule(name="order_customer_coverage", step=STEP, kind=RuleKind.COVERAGE, relation=ORDER_CUSTOMERS,
                description="share of orders whose customer is confirmed",
                threshold=Threshold(parameter="min_order_customer_coverage", title="Minimum order-customer coverage",
                                    description="Share of orders that must carry a confirmed customer_v2_ref.",
                                    default=0.5))


def existing_customers(db: Database, ids: set[str]) -> set[str]:
    return {c["id"] for c in db[CUSTOMERS].find({"id": {"$in": sorted(ids)}}, {"id": 1})} if ids else set()


def plan_batch(db: Database, batch: list[dict[str, Any]]) -> BatchPlan:
    existing = existing_customers(db, {o["customer_id"] for o in batch if is_key(o.get("customer_id"))})
    decisions, writes = [], []
    for order in batch:
        base: dict[str, Any] = {"oid": order["_id"], "app_id": order.get("id")}
        customer = order.get("customer_id")
        if not is_unset(order.get(LINK)):
            decisions.append(Ruling(**base, category=Category.ALREADY_LINKED))
        elif not is_key(customer):
            decisions.append(Ruling(**base, category=Category.INVALID, reason="customer_id: not a usable id"))
        elif customer not in existing:
            decisions.append(Ruling(**base, category=Category.UNMATCHED, reason="customer_id: names no profile"))
        else:
            decisions.append(Ruling(**base, category=Category.LINKED, link=customer))
            writes.append(FieldWrite(coll=ORDERS, oid=order["_id"], field=LINK, new=customer, old=order.get(LINK),
                                     had=LINK in order, group=str(order["_id"])))
    return BatchPlan(decisions=decisions, writes=writes)


def link_pass(ctx: StepContext) -> Pass:
    query = {LINK: {"$in": [None, ""]}} if ctx.kind == RunKind.RECONCILE else {}
    return Pass(step=STEP, phase="link", source=ctx.db[ORDERS], query=query,
                projection={"id": 1, "customer_id": 1, LINK: 1}, plan=partial(plan_batch, ctx.db), subject=ORDERS)


def findings(db: Database, linked: LinkCounts) -> Iterator[list[Finding]]:
    for chunk in link_walk(db, ORDERS, LINK, {"id": 1, LINK: 1}):
        linked[ORDER_CUSTOMERS.name] += len(chunk)
        existing = existing_customers(db, {d[LINK] for d in chunk})
        yield [Finding(DANGLING, ORDERS, d["_id"], d.get("id"), (link_value(ORDERS, d, LINK),), Category.DANGLING,
                       "customer_v2_ref: names no existing customer") for d in chunk if d[LINK] not in existing]


class OrderCustomer(StepSpec):
    id = STEP
    label = "toy: orders -> customer profiles"
    reads = (ORDERS, CUSTOMERS)
    writes = (ORDERS,)
    indexes = (IndexSpec(collection=ORDERS, keys=[(LINK, 1)]),)
    rules = (DANGLING, COVERAGE)
    checks = (Check("order_customer_links", measures=(DANGLING,), walk=findings, counts=(ORDER_CUSTOMERS,)),)
    relations = (ORDER_CUSTOMERS,)

    def phases(self, kind: RunKind) -> list[Phase]:
        return [Phase("link", link_pass)]
