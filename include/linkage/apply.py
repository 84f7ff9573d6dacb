"""The apply stage: a run's planned batches carried out, after its backup, in the order they were planned.

The passes only planned (`linkage.writer`), so the run knew every document it
would write before the first write, and backed exactly those up (a reconcile) or
everything (a migration). Each batch then goes `pending`, through its
conditional writes (`conditional.apply_batch`), to `applied` with exactly the
writes that landed (a batch that writes nothing was journaled `applied`). A
write that could not land (the app changed the field since it was planned, or a
unique index refused it) moves its decision: its count goes to its pass's
`unlanded` category and its document gets a review item saying why. Killed, it
resumes: a pending batch is applied again (what landed is read back), an
applied one is not touched.
"""

from __future__ import annotations

from collections.abc import Iterator

from linkage.backfill import phase_pass, record_step
from linkage.conditional import apply_batch
from linkage.engine import Pass
from linkage.handle import Linkage, WritePath
from linkage.journal import BatchRecord, BatchState, FieldWrite
from linkage.models import Category, Decision
from linkage.readahead import InFlight, bounded, read_ahead
from linkage.runs import RunRecord

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
            Decision(oid=w.oid, app_id=app_ids.get(w.oid), category=job.unlanded, reason=LANDED_ELSEWHERE,
                     collection=coll) for w in writes], found_by=record.phase)


def _planned(lk: Linkage, run_id: str, flight: InFlight) -> Iterator[BatchRecord]:
    return bounded(lk.journal.records(run_id, states=(BatchState.PLANNED, BatchState.PENDING)), flight)


def apply_planned(lk: Linkage, run_id: str) -> dict[str, dict[str, int]]:
    """Carry out every planned batch of the run (the next read while one is written); the steps' counts after."""
    run = lk.record(run_id)
    path, passes = lk.write_path(), dict[tuple[str, str], Pass]()
    flight = InFlight(lk.settings.in_flight)
    with read_ahead(_planned(lk, run_id, flight), flight) as records:
        for record in records:
            try:
                key = (record.step, record.phase)
                job = passes[key] if key in passes else passes.setdefault(key, phase_pass(lk, run, *key))
                lk.fence(record.id)  # the lease is still ours, with room for this batch
                path.journal.mark(record, BatchState.PENDING)
                dropped = apply_batch(path.app, record, lk.settings.write_chunk)
                if dropped:
                    _moved(path, run, job, record, dropped)
                path.journal.settle(record, rewrite=bool(dropped))
            finally:
                flight.release()
    return {step: record_step(lk, run_id, step) for step in run.params.steps}
