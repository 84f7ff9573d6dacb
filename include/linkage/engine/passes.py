"""The batched, journaled, resumable loop every backfill pass runs through.

A pass walks its source collection in the order of one field (`_id`, or a join
key such as `customer_id` so that each batch's look-ups are one index range),
asks its planner what each batch decides and would write, and hands the batch
to the run's writer (`linkage.engine.writer`), which journals it: a pass plans, the
run's apply stage writes (`linkage.stages.apply`). The journal records the last key of each batch (with a
tiebreak, the pair it ended on, which may stand inside a key), so a resumed pass continues after
it. Passes run per partition (a range of the walk key) so an orchestrator can fan them out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pymongo.collection import Collection

from linkage.core.app_schema import LINK_DOMAIN
from linkage.core.models import Category, Ruling
from linkage.core.progress import Progress
from linkage.engine.partitions import ID, Partition
from linkage.engine.readahead import InFlight, bounded, read_ahead
from linkage.engine.writer import BatchWriter
from linkage.mongo.resumable import resumable
from linkage.store.journal import BatchRecord, FieldWrite, Journal, batch_id


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


@dataclass
class BatchPlan:
    """What a planner decided for one batch; `extra` counts outside the categories; `declined` the people's
    decisions it does not carry out, and why, and `carried` every decision it walked (a decisions pass)."""

    decisions: list[Ruling]
    writes: list[FieldWrite] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)
    declined: dict[str, str] = field(default_factory=dict)
    carried: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Pass:
    """One scan of one source collection for one step.

    `walk` is the field the scan goes in order of: `_id`, or a string field whose
    `query` includes `by_string(walk)`. With a `tiebreak` (`_id`) the scan goes in
    (walk, tiebreak) order, so a batch may end inside a key (one key's documents
    need not fit in memory at once) and the checkpoint is the pair; partitions
    still cut on `walk` alone. `subject` is the collection whose documents the
    decisions are about (review items name it); `unlanded` is what a link becomes
    when its write cannot land.
    """

    step: str
    phase: str
    source: Collection
    query: dict[str, Any]
    projection: dict[str, int] | None
    plan: Callable[[list[dict[str, Any]]], BatchPlan]
    subject: str
    unlanded: Category = Category.CONFLICT
    walk: str = ID
    tiebreak: str | None = None

    @property
    def order(self) -> list[tuple[str, int]]:
        """The sort the scan reads in."""
        return [(self.walk, 1)] + ([(self.tiebreak, 1)] if self.tiebreak else [])

    def position(self, doc: dict[str, Any]) -> Any:
        """Where the scan stands after `doc`: its walk key, or [key, tiebreak value] (a list: BSON has no pair)."""
        return [doc[self.walk], doc[self.tiebreak]] if self.tiebreak else doc[self.walk]


@dataclass
class RunContext:
    """Everything a pass needs from the run it belongs to.

    `writer` is where its batches go (`linkage.engine.writer`: journaled and written, or
    journaled only in a dry run). `in_flight` bounds the batches read ahead and
    not yet settled; `most_in_flight` is the most there ever were.
    """

    run_id: str
    journal: Journal
    writer: BatchWriter
    batch_size: int = 1000
    show_progress: bool = False
    progress_interval: float = 2.0
    in_flight: int = 3
    most_in_flight: int = 0


def pages(cursor: Iterable[dict[str, Any]], size: int, walk: str | None = None, *,
          within_keys: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Cut one ordered cursor into batches of `size`.

    One cursor per pass, not one query per page: servers that cannot seek an
    `_id` range by index (the embedded one scans and sorts per query) would make
    page-by-page reads quadratic. Resume still restarts after the journal's
    last key, so the checkpoint semantics are those of keyset pages.

    With a `walk` key other than `_id`, documents whose key is not a string are
    left out (MongoDB also returns arrays holding a string to `by_string`, and
    those belong to the complementary `_id` pass), and a batch is closed only
    where the key changes, so "after the last key" is an exact checkpoint and one
    key's documents are decided together; `within_keys` (a walk with a tiebreak,
    whose checkpoint can stand inside a key) closes it at `size` wherever it is.
    """
    key = walk if walk is not None and walk != ID else None
    page: list[dict[str, Any]] = []
    for doc in cursor:
        if key is not None and not isinstance(doc.get(key), str):
            continue
        if len(page) >= size and (key is None or within_keys or doc[key] != page[-1][key]):
            yield page
            page = []
        page.append(doc)
    if page:
        yield page


def run_pass(ctx: RunContext, job: Pass, partition: Partition) -> dict[str, int]:
    """Run (or resume) one pass over one partition; return its counts.

    The next batches are read and planned in a thread of their own while this one
    is journaled (at most `ctx.in_flight` read and not yet journaled), and kept
    strictly in order; the checkpoint is the last journaled batch, so a kill
    loses at most the batches in flight, which a resume reads and plans again. A cursor the
    server ends mid-pass is reopened after the last batch read (`linkage.mongo.resumable`).
    """
    totals: Counter[str] = Counter()
    seq, after = 0, None
    last = ctx.journal.last(ctx.run_id, job.step, job.phase, partition.index)
    if last is not None:
        totals.update(last.totals)
        seq, after = last.seq + 1, last.last_key
    total = job.source.count_documents(where(job.query, partition.bounds(job.walk, after, job.tiebreak))) \
        if ctx.show_progress else 0
    progress = Progress(f"{job.step}/{job.phase}[{partition.index}]", total, enabled=ctx.show_progress,
                        interval=ctx.progress_interval)

    def read_after(key: Any) -> Iterable[dict[str, Any]]:
        query = where(job.query, partition.bounds(job.walk, key, job.tiebreak))
        return job.source.find(query, job.projection).sort(job.order).batch_size(ctx.batch_size)

    batches = resumable(read_after, lambda cursor: pages(cursor, ctx.batch_size, job.walk,
                                                         within_keys=job.tiebreak is not None),
                        lambda batch: job.position(batch[-1]), after)
    flight = InFlight(ctx.in_flight)
    planned = ((batch, job.plan(batch)) for batch in bounded(batches, flight))
    with read_ahead(planned, flight) as ahead:
        for batch, plan in ahead:
            try:
                counts = Counter(d.category.value for d in plan.decisions)
                counts.update(plan.extra)  # update, not +: extras may be negative
                totals.update(counts)
                record = BatchRecord(
                    _id=batch_id(ctx.run_id, job.step, job.phase, partition.index, seq),
                    run_id=ctx.run_id, step=job.step, phase=job.phase, partition=partition.index,
                    seq=seq, last_key=job.position(batch[-1]), counts=dict(counts), totals=dict(totals),
                    writes=plan.writes, declined=plan.declined, carried=plan.carried,
                )
                ctx.writer.write(job, record, plan.decisions)
                progress.advance(len(batch))
                seq += 1
            finally:
                flight.release()
    ctx.most_in_flight = max(ctx.most_in_flight, flight.high_water)
    progress.finish()
    return dict(totals)
