"""The batched, journaled, resumable loop every backfill pass runs through.

A pass walks its source collection in the order of one field (`_id`, or a join
key such as `customer_id` so that each batch's look-ups are one index range),
asks its planner what each batch decides and writes, journals the batch,
applies it, and settles it. The journal records the last key of each batch, so
a resumed pass continues after it. Passes run per partition (a range of the
walk key) so an orchestrator can fan them out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pymongo.collection import Collection
from pymongo.database import Database

from linkage.app_schema import LINK_DOMAIN
from linkage.journal import BatchRecord, FieldWrite, Journal, apply_batch, batch_id
from linkage.models import Category, Decision, Step
from linkage.progress import Progress
from linkage.readahead import InFlight, bounded, read_ahead
from linkage.resumable import resumable
from linkage.reviews import ReviewQueue

ID = "_id"


def by_string(field: str) -> dict[str, Any]:
    """The documents a pass can walk in `field` order: those where it is a string.

    Strings are the one type every MongoDB-compatible server orders alike, and a
    keyset over them (`$gt`) is exact on all of them.
    """
    return {field: {"$type": "string"}}


def linked(field: str) -> dict[str, Any]:
    """The documents whose link `field` holds a link value (a non-empty string), walkable in its order."""
    return {field: {**LINK_DOMAIN, "$type": "string"}}


def not_by_string(field: str) -> dict[str, Any]:
    """The complement of `by_string` (missing, null, any other type, any array), for an `_id` pass.

    Neither a string nor an array holding one, or an array: exact on MongoDB, and what both
    nx (no `$not`) and FerretDB (no `$ne` inside `$expr`) answer alike.
    """
    return {"$or": [{"$nor": [{field: {"$type": "string"}}]}, {field: {"$type": "array"}}]}


def where(query: dict[str, Any], bounds: dict[str, Any]) -> dict[str, Any]:
    """`query` narrowed by a partition's `bounds`.

    An `$and`, not a merged dict: the embedded server drops an `_id` range that
    sits beside an `$expr`, and `$and` means the same on every server.
    """
    return {"$and": [query, bounds]} if query and bounds else {**query, **bounds}


class Partition(BaseModel):
    """A range of a pass's walk key: (lo, hi], open where None."""

    index: int = 0
    lo: Any = None
    hi: Any = None

    model_config = {"arbitrary_types_allowed": True}

    def bounds(self, walk: str = ID, after: Any = None) -> dict[str, Any]:
        start = after if after is not None else self.lo
        bound: dict[str, Any] = {}
        if start is not None:
            bound["$gt"] = start
        if self.hi is not None:
            bound["$lte"] = self.hi
        return {walk: bound} if bound else {}


def split(source: Collection, query: dict[str, Any], parts: int, walk: str = ID) -> list[Partition]:
    """Cut a source into `parts` contiguous ranges of its walk key, of about equal size.

    A cut falls between two keys, so equal keys (one customer's documents) always
    share a partition.
    """
    if parts <= 1:
        return [Partition()]
    total = source.count_documents(query)
    parts = max(1, min(parts, total or 1))
    cuts: list[Any] = []
    for k in range(1, parts):
        doc = next(source.find(query, {walk: 1}).sort(walk, 1).skip(k * total // parts - 1).limit(1), None)
        key = None if doc is None else doc.get(walk)
        if key is not None and (walk == ID or isinstance(key, str)) and (not cuts or key != cuts[-1]):
            cuts.append(key)
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

    `walk` is the field the scan goes in order of: `_id`, or a string field whose
    `query` includes `by_string(walk)`. `subject` is the collection whose
    documents the decisions are about (review items name it); `unlanded` is what
    a link becomes when its write cannot land.
    """

    step: Step
    phase: str
    source: Collection
    query: dict[str, Any]
    projection: dict[str, int] | None
    plan: Callable[[list[dict[str, Any]]], BatchPlan]
    subject: str
    unlanded: Category = Category.CONFLICT
    walk: str = ID


@dataclass
class RunContext:
    """Everything a pass needs from the run it belongs to.

    A dry run journals its batches (counts, no writes) and writes nothing else:
    not the app's collections, not the review queue. `in_flight` bounds the
    batches read ahead and not yet settled; `most_in_flight` is the most there
    ever were.
    """

    db: Database
    run_id: str
    journal: Journal
    reviews: ReviewQueue
    batch_size: int = 1000
    dry_run: bool = False
    guard: Callable[[], None] = lambda: None
    show_progress: bool = False
    progress_interval: float = 2.0
    in_flight: int = 3
    most_in_flight: int = 0

    def review(self, job: Pass, decisions: list[Decision]) -> None:
        if not self.dry_run:
            self.reviews.record(self.run_id, job.step, job.subject, decisions, found_by=job.phase)


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
        for counts in (record.counts, record.totals):
            counts[Category.LINKED.value] = counts.get(Category.LINKED.value, 0) - lost
            counts[unlanded.value] = counts.get(unlanded.value, 0) + lost
    ctx.journal.settle(record, rewrite=bool(dropped))
    return dropped


def pages(cursor: Iterable[dict[str, Any]], size: int, walk: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Cut one ordered cursor into batches of `size`.

    One cursor per pass, not one query per page: servers that cannot seek an
    `_id` range by index (the embedded one scans and sorts per query) would make
    page-by-page reads quadratic. Resume still restarts after the journal's
    last key, so the checkpoint semantics are those of keyset pages.

    With a `walk` key other than `_id`, a batch is closed only where the key
    changes (so "after the last key" is an exact checkpoint and one customer's
    documents are decided together), and documents whose key is not a string
    are left out: MongoDB also returns arrays holding a string to `by_string`,
    and those belong to the complementary `_id` pass.
    """
    key = walk if walk is not None and walk != ID else None
    page: list[dict[str, Any]] = []
    for doc in cursor:
        if key is not None and not isinstance(doc.get(key), str):
            continue
        if len(page) >= size and (key is None or doc[key] != page[-1][key]):
            yield page
            page = []
        page.append(doc)
    if page:
        yield page


def run_pass(ctx: RunContext, job: Pass, partition: Partition) -> dict[str, int]:
    """Run (or resume) one pass over one partition; return its counts.

    The next batches are read and planned in a thread of their own while this one
    is journaled and written (at most `ctx.in_flight` read and not yet settled),
    and handled strictly in order: a batch is journaled before its writes and
    settled after them, and the checkpoint is the last settled batch, so a kill
    loses at most the batches in flight, which a resume reads and plans again. A cursor the
    server ends mid-pass is reopened after the last batch read (`linkage.resumable`).
    """
    totals: Counter[str] = Counter()
    seq, after = 0, None
    last = ctx.journal.last(ctx.run_id, job.step, job.phase, partition.index)
    if last is not None:
        if last.state == "pending":
            _settle(ctx, last, job.unlanded)
        totals.update(last.totals)
        seq, after = last.seq + 1, last.last_key
    total = job.source.count_documents(where(job.query, partition.bounds(job.walk, after))) \
        if ctx.show_progress else 0
    progress = Progress(f"{job.step}/{job.phase}[{partition.index}]", total, enabled=ctx.show_progress,
                        interval=ctx.progress_interval)

    def read_after(key: Any) -> Iterable[dict[str, Any]]:
        query = where(job.query, partition.bounds(job.walk, key))
        return job.source.find(query, job.projection).sort(job.walk, 1).batch_size(ctx.batch_size)

    batches = resumable(read_after, lambda cursor: pages(cursor, ctx.batch_size, job.walk),
                        lambda batch: batch[-1][job.walk], after)
    flight = InFlight(ctx.in_flight)
    planned = ((batch, job.plan(batch)) for batch in bounded(batches, flight))
    with read_ahead(planned, flight) as ahead:
        for batch, plan in ahead:
            try:
                ctx.guard()
                counts = Counter(d.category.value for d in plan.decisions)
                counts.update(plan.extra)  # update, not +: extras may be negative
                totals.update(counts)
                record = BatchRecord(
                    _id=batch_id(ctx.run_id, job.step, job.phase, partition.index, seq),
                    run_id=ctx.run_id, step=job.step, phase=job.phase, partition=partition.index,
                    seq=seq, last_key=batch[-1][job.walk], counts=dict(counts), totals=dict(totals),
                    writes=[] if ctx.dry_run else plan.writes,
                    state="dry" if ctx.dry_run else "pending",
                )
                # Review items first: they are idempotent, and a batch the journal calls applied
                # must have them (a resumed run never plans an applied batch again).
                ctx.review(job, plan.decisions)
                ctx.journal.begin(record)
                if not ctx.dry_run:
                    dropped = _settle(ctx, record, job.unlanded)
                    if dropped:
                        totals = Counter(record.totals)
                        ctx.review(job, _downgraded(plan.decisions, dropped, job.unlanded))
                progress.advance(len(batch))
                seq += 1
            finally:
                flight.release()
    ctx.most_in_flight = max(ctx.most_in_flight, flight.high_water)
    progress.finish()
    return dict(totals)
