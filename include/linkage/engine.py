"""The batched, journaled, resumable loop every backfill pass runs through.

A pass reads its source collection in `_id` order (keyset pages, so no cursor
outlives a batch and memory holds one batch), asks its planner what each batch
decides and writes, journals the batch, applies it, and settles it. Passes run
per partition (an `_id` range) so an orchestrator can fan them out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pymongo.collection import Collection
from pymongo.database import Database

from linkage.journal import BatchRecord, FieldWrite, Journal, apply_batch
from linkage.models import Category, Decision, Step
from linkage.progress import Progress
from linkage.reviews import ReviewQueue


class Partition(BaseModel):
    """An `_id` range of a pass's source: (lo, hi], open where None."""

    index: int = 0
    lo: Any = None
    hi: Any = None

    model_config = {"arbitrary_types_allowed": True}

    def bounds(self, after: Any = None) -> dict[str, Any]:
        start = after if after is not None else self.lo
        bound: dict[str, Any] = {}
        if start is not None:
            bound["$gt"] = start
        if self.hi is not None:
            bound["$lte"] = self.hi
        return {"_id": bound} if bound else {}


def split(source: Collection, query: dict[str, Any], parts: int) -> list[Partition]:
    """Cut a source into `parts` contiguous `_id` ranges of about equal size."""
    if parts <= 1:
        return [Partition()]
    total = source.count_documents(query)
    parts = max(1, min(parts, total or 1))
    cuts: list[Any] = []
    for k in range(1, parts):
        doc = next(source.find(query, {"_id": 1}).sort("_id", 1).skip(k * total // parts - 1).limit(1), None)
        if doc is not None and (not cuts or doc["_id"] != cuts[-1]):
            cuts.append(doc["_id"])
    edges = [None, *cuts, None]
    return [Partition(index=i, lo=edges[i], hi=edges[i + 1]) for i in range(len(edges) - 1)]


@dataclass
class BatchPlan:
    """What a planner decided for one batch; `extra` counts outside the categories."""

    decisions: list[Decision]
    writes: list[FieldWrite] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Pass:
    """One scan of one source collection for one step.

    `subject` is the collection whose documents the decisions are about (review
    items name it); `unlanded` is what a link becomes when its write cannot land.
    """

    step: Step
    phase: str
    source: Collection
    query: dict[str, Any]
    projection: dict[str, int] | None
    plan: Callable[[list[dict[str, Any]]], BatchPlan]
    subject: str
    unlanded: Category = Category.CONFLICT


@dataclass
class RunContext:
    """Everything a pass needs from the run it belongs to."""

    db: Database
    run_id: str
    journal: Journal
    reviews: ReviewQueue
    batch_size: int = 1000
    dry_run: bool = False
    guard: Callable[[], None] = lambda: None
    show_progress: bool = False


def _downgraded(decisions: list[Decision], dropped: list[FieldWrite], to: Category) -> list[Decision]:
    """The linked decisions whose writes could not land, recategorised."""
    groups = {w.group for w in dropped}
    return [d.model_copy(update={"category": to, "reason": "link field changed by someone else meanwhile"})
            for d in decisions if str(d.oid) in groups and d.category == Category.LINKED]


def _settle(ctx: RunContext, record: BatchRecord, unlanded: Category) -> list[FieldWrite]:
    """Apply a journaled batch and mark it applied; returns the writes that could not land."""
    dropped = apply_batch(ctx.db, record)
    if dropped:
        lost = len({w.group for w in dropped})
        record.counts[Category.LINKED.value] = record.counts.get(Category.LINKED.value, 0) - lost
        record.counts[unlanded.value] = record.counts.get(unlanded.value, 0) + lost
    ctx.journal.settle(record, rewrite=bool(dropped))
    return dropped


def pages(cursor: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Cut one `_id`-ordered cursor into batches.

    One cursor per pass, not one query per page: servers that cannot seek an
    `_id` range by index (the embedded one scans and sorts per query) would make
    page-by-page reads quadratic. Resume still restarts after the journal's
    last `_id`, so the checkpoint semantics are those of keyset pages.
    """
    page: list[dict[str, Any]] = []
    for doc in cursor:
        page.append(doc)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def run_pass(ctx: RunContext, job: Pass, partition: Partition) -> dict[str, int]:
    """Run (or resume) one pass over one partition; return its counts."""
    totals: Counter[str] = Counter()
    seq, after = 0, None
    last = ctx.journal.last(ctx.run_id, job.step, job.phase, partition.index)
    if last is not None:
        if last.state == "pending":
            _settle(ctx, last, job.unlanded)
        totals.update(ctx.journal.totals(ctx.run_id, job.step, phase=job.phase, partition=partition.index))
        seq, after = last.seq + 1, last.last_key
    total = job.source.count_documents({**job.query, **partition.bounds(after)}) if ctx.show_progress else 0
    progress = Progress(f"{job.step}/{job.phase}[{partition.index}]", total, enabled=ctx.show_progress)
    cursor = (job.source.find({**job.query, **partition.bounds(after)}, job.projection)
              .sort("_id", 1).batch_size(ctx.batch_size))
    for batch in pages(cursor, ctx.batch_size):
        ctx.guard()
        plan = job.plan(batch)
        counts = Counter(d.category.value for d in plan.decisions)
        counts.update(plan.extra)  # update, not +: extras may be negative
        record = BatchRecord(
            _id=f"{ctx.run_id}:{job.step}:{job.phase}:{partition.index}:{seq:07d}",
            run_id=ctx.run_id, step=job.step, phase=job.phase, partition=partition.index,
            seq=seq, last_key=batch[-1]["_id"], counts=dict(counts),
            writes=[] if ctx.dry_run else plan.writes,
            state="dry" if ctx.dry_run else "pending",
        )
        # Review items first: they are idempotent, and a batch the journal calls applied
        # must have them (validation treats reviewed violations as known, and a resumed
        # run never plans an applied batch again).
        ctx.reviews.record(ctx.run_id, job.step, job.subject, plan.decisions)
        ctx.journal.begin(record)
        if not ctx.dry_run:
            dropped = _settle(ctx, record, job.unlanded)
            if dropped:
                ctx.reviews.record(ctx.run_id, job.step, job.subject, _downgraded(plan.decisions, dropped, job.unlanded))
        totals.update(record.counts)
        progress.advance(len(batch))
        seq += 1
    progress.finish()
    return dict(totals)
