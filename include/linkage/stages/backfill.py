"""A backfill stage: a step's phases, each cut into partitions and run as passes of the engine.

The CLI's runner works a phase's partitions in threads of this process; the
DAG factory maps each onto a task instance of its own (`run_phase`), which
claims its partition first so that an older try still running stops at its
next write. The passes plan into the journal; the same stage then writes each
partition's plan (`linkage.stages.apply.apply_partition`), again one task (or thread)
a partition. The step's counts are the sum of its batches' (`record_step`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

from linkage.core.errors import LinkageError, LockLostError
from linkage.core.models import COUNT_KEYS
from linkage.engine.partitions import Partition, split
from linkage.engine.passes import Pass, run_pass
from linkage.relations import REGISTRY
from linkage.run.record import RunRecord
from linkage.run.record_parts import PhaseRecord
from linkage.run.session import Linkage


def phase_pass(lk: Linkage, run: RunRecord, step: str, phase: str) -> Pass:
    ctx = lk.step_context(run)
    return REGISTRY[step].phase(phase, run.kind).build(ctx)


def partitions(lk: Linkage, run_id: str, step: str, phase: str) -> list[Partition]:
    """Split a phase's source into the run's number of ranges of its walk key, once per run (retries reuse them)."""
    run = lk.record(run_id)
    stored = run.step(step).phases.get(phase, PhaseRecord()).partitions
    if stored is not None:
        return stored
    job = phase_pass(lk, run, step, phase)
    cut = split(job.source, job.query, run.params.partitions, job.walk)
    lk.runs.update(run_id, **{PhaseRecord.partitions_path(step, phase): [p.model_dump() for p in cut]})
    return cut


def partition_at(lk: Linkage, run_id: str, step: str, phase: str, index: int) -> Partition:
    """A partition cut earlier by `partitions` (a mapped task finds its range by index)."""
    found = lk.record(run_id).step(step).phases.get(phase, PhaseRecord()).partition(index)
    if found is None:
        raise LinkageError(f"run {run_id} has no partition {index} for {step}/{phase}")
    return found


@contextmanager
def claimed(lk: Linkage, run_id: str, step: str, phase: str, index: int, owner: str) -> Iterator[None]:
    """Claim a partition for this try of its task: while the block runs, a write stops once a newer try claimed it.

    Airflow retries a partition whose worker it lost; if that worker was only cut off and
    still runs, the two tries would share the run's lease and race on the same journal
    sequence. Each try claims the partition, and a try that finds a newer claim stops
    before its next write.
    """
    key = f"{step}:{phase}:{index}"  # one field: a numeric path segment means an array index to MongoDB
    lk.runs.claim(run_id, key, owner)

    def still_ours() -> None:
        if lk.runs.claimant(run_id, key) != owner:
            raise LockLostError(f"partition {index} of {step}/{phase} of run {run_id} was taken over by a newer try")

    with lk.guarded_by(still_ours):
        yield


def run_phase(lk: Linkage, run_id: str, step: str, phase: str, partition: Partition, *,
              show_progress: bool = False) -> dict[str, int]:
    """One pass over one partition, planned into the journal; its totals."""
    run = lk.record(run_id)
    return run_pass(lk.run_context(run, show_progress=show_progress), phase_pass(lk, run, step, phase), partition)


def record_step(lk: Linkage, run_id: str, step: str, seconds: float | None = None) -> dict[str, int]:
    """The step's counts by category: the sum of its batches' counts in the journal (each adjusted when it was
    applied), categories only (not a phase's own extras)."""
    summed = lk.journal.step_counts(run_id, step)
    counts = {category: summed.get(category, 0) for category in COUNT_KEYS}
    lk.runs.record_step(run_id, step, counts, seconds)
    return counts


def partitions_of(lk: Linkage, run_id: str, step: str,
                  phases: Sequence[str]) -> Iterator[tuple[str, list[Partition]]]:
    """Each phase with its partitions (cut on first asking, as the phase is planned)."""
    for phase in phases:
        yield phase, partitions(lk, run_id, step, phase)


def in_parallel(work: Sequence[Callable[[], object]]) -> None:
    """Each call in a thread of its own, at once (as Airflow's mapped tasks); the first failure is raised."""
    with ThreadPoolExecutor(max_workers=max(1, len(work))) as pool:
        for done in [pool.submit(call) for call in work]:
            done.result()


def run_step(lk: Linkage, run_id: str, step: str, phases: Sequence[str] | None = None, *,
             show_progress: bool = False) -> dict[str, int]:
    """Plan every phase of a step (the plan's, or the registry's for the run's kind) into the journal in this
    process, the partitions of a phase at once; the step's counts so far."""
    started = time.monotonic()
    chosen = REGISTRY[step].phase_names(lk.record(run_id).kind) if phases is None else phases
    for phase, cut in partitions_of(lk, run_id, step, chosen):
        in_parallel([partial(run_phase, lk, run_id, step, phase, p, show_progress=show_progress) for p in cut])
    return record_step(lk, run_id, step, time.monotonic() - started)
