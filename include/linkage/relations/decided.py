"""The `decided` phase: people's decisions on review items, planned into the journal like any other pass.

Every step that takes decisions (its `subjects`) has this phase first in a
reconcile and alone in a decisions run. It walks the step's approved decisions
(a person other than their decider approved them: `linkage.stages.approval`) made
before the run started (`linkage_decisions`, in id order, so it resumes like
any pass): a decision nobody else approved is never written. It plans, for each, exactly what it says: a link (with the
target's side too where the relation has two), a clear, or nothing for "leave
it unlinked". A decision whose document changed since it was made, whose target
is gone, or whose link would now break a rule of the relation is not carried
out: it is `declined` with why, in the batch's journal document, and the run
marks it stale when it concludes (`linkage.stages.approval`). Writes go through the
journal, the backup, the conditional apply and validation as every pass's do;
each decision's writes are one group, so a half-landed decision is undone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from pymongo.database import Database

from linkage.core.keys import id_key
from linkage.core.models import Category, RunKind
from linkage.core.normalize import is_unset
from linkage.engine.passes import BatchPlan, Pass
from linkage.mongo.lookups import by_keys
from linkage.store.decisions import DecisionKind, DecisionRecord, DecisionStatus, StateReader, made_before
from linkage.store.journal import FieldWrite

if TYPE_CHECKING:  # the steps' vocabulary (`linkage.relations.base`) builds this phase into every step that decides
    from linkage.relations.base import StepContext, Subject

DECIDED = "decided"
#: The counts a decisions pass keeps beside `linked` (its extras).
NONE_KEPT, CLEARED, DECLINED = "decided_none", "cleared", "declined"


def _subject_plan(db: Database, subject: Subject, states: StateReader, group: Sequence[DecisionRecord],
                  plan: BatchPlan, counts: Counter[str]) -> None:
    """Plan one subject's decisions of a batch into `plan` (its writes, the declined ones)."""
    docs = states.documents(subject.collection, (d.document_oid for d in group))
    links: list[tuple[DecisionRecord, Mapping[str, Any]]] = []
    for d in group:
        doc = docs.get(id_key(d.document_oid))
        if (reason := states.stale_reason(d, doc)) is not None:
            plan.declined[d.id] = reason
        elif d.kind == DecisionKind.NONE:
            counts[NONE_KEPT] += 1
        elif d.kind == DecisionKind.CLEAR:
            assert doc is not None
            plan.writes.append(FieldWrite(coll=subject.collection, oid=doc["_id"], field=subject.link, new=None,
                                          old=doc.get(subject.link), had=subject.link in doc, group=d.id))
            counts[CLEARED] += 1
        else:
            assert doc is not None
            links.append((d, doc))
    if not links:
        return
    back = subject.back
    targets = {t["id"]: t for t in by_keys(db[subject.target], "id", {str(d.target) for d, _ in links},
                                           {"id": 1, **({back: 1} if back else {})}, range_limit=None)}
    problems = subject.check(db, [(doc, str(d.target)) for d, doc in links])
    for (d, decided), problem in zip(links, problems, strict=True):
        target = targets.get(str(d.target))
        if target is None or problem:
            plan.declined[d.id] = f"linking now would break a rule: {problem}" if problem else \
                f"{subject.target} {d.target} no longer exists"
            continue
        plan.writes.append(FieldWrite(coll=subject.collection, oid=decided["_id"], field=subject.link,
                                      new=str(d.target), old=decided.get(subject.link), had=subject.link in decided,
                                      group=d.id))
        if back and is_unset(target.get(back)):
            plan.writes.append(FieldWrite(coll=subject.target, oid=target["_id"], field=back, new=decided["id"],
                                          old=target.get(back), had=back in target, group=d.id))
        counts[Category.LINKED.value] += 1


def plan_decided(db: Database, subjects: Mapping[str, Subject], states: StateReader,
                 batch: list[dict[str, Any]]) -> BatchPlan:
    """What a page of decisions writes, checked against their documents as they are now."""
    plan, counts = BatchPlan(decisions=[]), Counter[str]()
    grouped: dict[str, list[DecisionRecord]] = {}
    for raw in batch:
        decision = DecisionRecord.model_validate(raw)
        plan.carried.append(decision.id)
        grouped.setdefault(decision.collection, []).append(decision)
    for collection, group in grouped.items():
        subject = subjects.get(collection)
        if subject is None:  # a collection the step no longer decides on: nothing a person asked for can be done
            plan.declined.update({d.id: f"step {d.step} takes no decisions on {collection}" for d in group})
            continue
        _subject_plan(db, subject, states, group, plan, counts)
    counts[DECLINED] += len(plan.declined)
    plan.extra = dict(counts)
    return plan


def decided_pass(step: str, subjects: Sequence[Subject], ctx: StepContext) -> Pass:
    """The pass over the step's approved decisions made before the run started, in id order (a decisions
    run's dry run: those awaiting approval too, to show what an approval would write)."""
    statuses = [DecisionStatus.APPROVED.value]
    if ctx.dry_run and ctx.kind == RunKind.DECISIONS:
        statuses.append(DecisionStatus.PENDING.value)
    query = {"status": {"$in": statuses}, "step": step, **made_before(ctx.started)}
    return Pass(step=step, phase=DECIDED, source=ctx.bookkeeping("decisions"), query=query, projection=None,
                plan=partial(plan_decided, ctx.db, {s.collection: s for s in subjects}, ctx.states),
                subject=subjects[0].collection, unlanded=Category.CONFLICT)
