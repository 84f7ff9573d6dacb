"""Writing what a relation planned: its batches carried out, after its backup, partition by partition.

A relation's passes only plan (`linkage.engine.writer`), so the run knows every
document the relation will write before its first write, and backed exactly
those up (a reconcile) or everything (a migration, before any backfill). Each
phase's partitions are then written, phase after phase (the order the
run's writes always had: a phase's batches land after the phase before's), each partition
by its own task (`apply_partition`). Each batch goes `pending`, through its
conditional writes (`conditional.apply_batch`), to `applied` with exactly the
writes that landed (a batch that writes nothing was journaled `applied`). A
write that could not land (the app changed the field since it was planned, or a
unique index refused it) moves its decision: its count goes to its pass's
`unlanded` category and its document gets a review item saying why. Killed, it
resumes: a pending batch is applied again (what landed is read back), an
applied one is not touched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import NamedTuple

from linkage.core.models import Category, Ruling
from linkage.engine.conditional import apply_batch
from linkage.engine.passes import Pass
from linkage.engine.readahead import InFlight, bounded, read_ahead
from linkage.run.record import RunRecord
from linkage.run.session import Linkage, WritePath
from linkage.stages.backfill import in_parallel, partitions_of, phase_pass, record_step
from linkage.store.journal import BatchRecord, BatchState, FieldWrite

LANDED_ELSEWHERE = "link field changed by someone else meanwhile"


def _moved(path: WritePath, run: RunRecord, job: Pass, record: BatchRecord, dropped: list[FieldWrite]) -> None:
    """The decisions whose writes could not land: counted as `unlanded`, each its document's review item."""
    groups: dict[str, FieldWrite] = {}
    for write in dropped:  # the document the decision is about, where the group writes it; else the one it writes
        if write.group not in groups or write.coll == job.subject:
            groups[write.group] = write
    for counts in (record.counts, record.totals):
        counts[Category.LINKED.value] = counts.get(Category.LINKED.value, 0) - len(groups)
        counts[job.unlanded.value] = counts.get(job.unlanded.value, 0) + len(groups)
    for coll in {w.coll for w in groups.values()}:
        writes = [w for w in groups.values() if w.coll == coll]
        app_ids = {d["_id"]: d.get("id") for d in path.app[coll].find({"_id": {"$in": [w.oid for w in writes]}},
                                                                          {"id": 1})}
        path.reviews.record(run.id, record.step, coll, [
            Ruling(oid=w.oid, app_id=app_ids.get(w.oid), category=job.unlanded, reason=LANDED_ELSEWHERE,
                     collection=coll) for w in writes], found_by=record.phase)


class Narrowed(NamedTuple):
    """Which of a run's planned batches to write: all (the defaults), or one step's phase's partition's."""

    step: str | None = None
    phase: str | None = None
    partition: int | None = None


def _planned(lk: Linkage, run_id: str, flight: InFlight, narrowed: Narrowed) -> Iterator[BatchRecord]:
    states = (BatchState.PLANNED, BatchState.PENDING)
    return bounded(lk.journal.records(run_id, states=states, **narrowed._asdict()), flight)


def _apply(lk: Linkage, run: RunRecord, by: str, narrowed: Narrowed) -> int:
    """Carry out the run's planned batches (those of one step, phase, partition when narrowed), in the order they
    were journaled, the next read while one is written; how many."""
    path, passes, done = lk.write_path(), dict[tuple[str, str], Pass](), 0
    flight = InFlight(lk.settings.in_flight)
    with read_ahead(_planned(lk, run.id, flight, narrowed), flight) as records:
        for record in records:
            try:
                key = (record.step, record.phase)
                job = passes[key] if key in passes else passes.setdefault(key, phase_pass(lk, run, *key))
                lk.fence(record.id)  # the lease is still ours, with room for this batch
                record.applied_by = by
                path.journal.mark(record, BatchState.PENDING)
                dropped = apply_batch(path.app, record, lk.settings.write_chunk)
                if dropped:
                    _moved(path, run, job, record, dropped)
                path.journal.settle(record, rewrite=bool(dropped))
                done += 1
            finally:
                flight.release()
    return done


def apply_partition(lk: Linkage, run_id: str, step: str, phase: str, partition: int, by: str) -> int:
    """Write one partition of one phase: its planned batches, journaled first, conditional, fenced by the lease
    (and by the partition's claim, in a task). Run again, it goes on where it stopped: a pending batch is applied
    again (what landed is read back), an applied one is not touched. `by` is recorded in each batch. How many."""
    return _apply(lk, lk.record(run_id), by, Narrowed(step, phase, partition))


def write_step(lk: Linkage, run_id: str, step: str, phases: Sequence[str], by: str) -> None:
    """Write a planned step in this process, phase after phase, the partitions of a phase at once (threads, as
    Airflow's mapped `write_<phase>` tasks are): the CLI's executor and the benches."""
    for phase, cut in partitions_of(lk, run_id, step, phases):
        in_parallel([partial(apply_partition, lk, run_id, step, phase, p.index, by) for p in cut])


def apply_planned(lk: Linkage, run_id: str, by: str = "apply_planned") -> dict[str, dict[str, int]]:
    """Carry out every planned batch of the run at once, in journal order (a bench's write phase, a test's
    resume); the steps' counts after."""
    run = lk.record(run_id)
    _apply(lk, run, by, Narrowed())
    return {step: record_step(lk, run_id, step) for step in run.params.steps}
