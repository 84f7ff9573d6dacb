"""The tasks a run is made of, shared by the CLI and the Airflow DAGs.

Each public function here is one task: it opens nothing itself (it gets a
`Linkage` handle), reads what it needs from the run record and the journal,
and is safe to run again (a retry or a resumed run picks up where it stopped).
Steps are never named here: their phases come from the registry
(`linkage.steps.REGISTRY`). `migrate` strings the tasks together for the CLI;
`verdict` is the one place that decides whether a validated run is kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection

from linkage import backup as backups
from linkage.alerts import Alert, AlertStore, Event
from linkage.app_schema import APP_COLLECTIONS
from linkage.coverage import less_written
from linkage.database import connect, server_description
from linkage.engine import Partition, Pass, RunContext, run_pass, split
from linkage.errors import LinkageError, LockLostError
from linkage.indexes import describe_outcomes, ensure_indexes
from linkage.journal import Journal, LinkValue, Reverted, revert_batch
from linkage.lock import Lease
from linkage.masking import mask_uri
from linkage.models import Decision, MigrationParams, RunKind, RunState, Step, empty_counts
from linkage.readahead import InFlight, bounded, read_ahead
from linkage.reviews import ReviewQueue
from linkage.runs import AirflowRun, RunRecord, RunStore, new_run_id, run_slug
from linkage.settings import Settings
from linkage.steps import REGISTRY, StepContext
from linkage.validation import ValidationOutcome
from linkage.validation.metrics import Finding, measure
from linkage.validation.rules import RULES

log = logging.getLogger("linkage.pipeline")
Guard = Callable[[], None]
VALIDATION = "validation"  # what review items found by validation say they were found by


def no_guard() -> None:
    """The guard of work done without a lease (a dry run writes nothing to guard)."""


class Linkage:
    """The app database and linkage's bookkeeping collections for one setting."""

    def __init__(self, settings: Settings, client: MongoClient | None = None) -> None:
        self.settings = settings
        self.client = client or connect(settings)
        self.db = self.client[settings.db]
        self.runs = RunStore(self.bookkeeping("runs"))
        self.journal = Journal(self.bookkeeping("journal"))
        self.reviews = ReviewQueue(self.bookkeeping("review"))
        self.alerts = AlertStore(self.bookkeeping("alerts"))
        self.lock = self.bookkeeping("lock")

    def bookkeeping(self, name: str) -> Collection:
        """A `linkage_*` collection of this database, by its short name."""
        return self.db[self.settings.collection(name)]

    def ensure_bookkeeping(self) -> None:
        self.runs.ensure_indexes()
        self.journal.ensure_indexes()
        self.reviews.ensure_indexes()
        for spec in REGISTRY.values():
            spec.ensure_indexes(self.bookkeeping)

    def close(self) -> None:
        self.client.close()

    def record(self, run_id: str) -> RunRecord:
        return self.runs.record(run_id)

    def params(self, run_id: str) -> MigrationParams:
        return self.record(run_id).params

    @contextmanager
    def hold(self, run_id: str) -> Iterator[Lease]:
        """Take the lease for `run_id` (heartbeating) and release it at the end (the CLI)."""
        owner = self.record(run_id).triggered_by
        lease = Lease.acquire(self.lock, run_id, owner, self.settings.lock_ttl_seconds).start_heartbeat()
        try:
            yield lease
        finally:
            lease.release()

    @contextmanager
    def joined(self, run_id: str) -> Iterator[Lease]:
        """Work under the lease the run already holds (an Airflow task), heartbeating it."""
        lease = Lease.join(self.lock, run_id, self.settings.lock_ttl_seconds).start_heartbeat()
        try:
            yield lease
        finally:
            lease.stop_heartbeat()

    def step_context(self, run_id: str) -> StepContext:
        return StepContext(db=self.db, run_id=run_id, kind=self.record(run_id).kind, tz=self.settings.tz,
                           bookkeeping=self.bookkeeping)

    def run_context(self, run_id: str, guard: Guard, *, show_progress: bool = False) -> RunContext:
        params = self.params(run_id)
        return RunContext(db=self.db, run_id=run_id, journal=self.journal, reviews=self.reviews,
                          batch_size=params.batch_size, dry_run=params.dry_run, guard=guard,
                          show_progress=show_progress, progress_interval=self.settings.progress_interval,
                          in_flight=self.settings.in_flight)


# -- tasks ---------------------------------------------------------------------------------------------------

def preflight(lk: Linkage) -> dict[str, Any]:
    """What a person checks before a run: where, which server, how much data, the links as they are."""
    return {
        "mongo_uri": mask_uri(lk.settings.mongo_uri),
        "db": lk.settings.db,
        "server": server_description(lk.db),
        "counts": {name: lk.db[name].estimated_document_count() for name in APP_COLLECTIONS},
        "timezone": lk.settings.timezone,
        "bookkeeping_prefix": lk.settings.prefix,
    }


def start_run(lk: Linkage, params: MigrationParams, triggered_by: str, *, kind: RunKind = RunKind.MIGRATE,
              new: bool = False, run_id: str | None = None, airflow: AirflowRun | None = None) -> tuple[str, bool]:
    """Create a run record, or resume one; returns (run_id, resumed).

    With `run_id` (an Airflow run's own id) that run is resumed if it exists, so a
    retried task continues it. Otherwise the newest unfinished run of this kind is
    resumed, unless `new` or a dry run.
    """
    lk.ensure_bookkeeping()
    if run_id is not None and lk.runs.find(run_id):
        lk.runs.resumed(run_id)
        return run_id, True
    if run_id is None and not new and not params.dry_run:
        unfinished = lk.runs.newest_unfinished(kind)
        if unfinished is not None:
            lk.runs.resumed(unfinished["_id"])
            return unfinished["_id"], True
    run_id = run_id or new_run_id(f"dry-{kind}" if params.dry_run else kind)
    lk.runs.create(kind, params, triggered_by, run_id, airflow)
    return run_id, False


def backed_up_collections(params: MigrationParams) -> list[str]:
    return sorted({name for step in params.steps for name in REGISTRY[step].writes})


def take_backup(lk: Linkage, run_id: str) -> dict[str, Any]:
    """Back up the collections the run's steps write; a verified backup is reused.

    The backup directory is checked first (it exists, is a writable directory with
    room for the estimate), so a bad target ends the run before any app write.
    """
    run = lk.record(run_id)
    if run.backup and run.backup.get("verified"):
        backups.verify(Path(run.backup["path"]))
        return run.backup
    collections = backed_up_collections(run.params)
    root = lk.settings.backup_dir / run_slug(run_id)
    backups.check_target(lk.settings.backup_dir, backups.estimate_bytes(lk.db, collections, lk.settings.backup_gzip),
                         create=lk.settings.create_backup_dir)
    manifest = backups.dump(lk.db, collections, root, run_id, compressed=lk.settings.backup_gzip)
    backups.verify(root)
    record = {"path": str(root), "verified": True, "gzip": manifest.gzip,
              "counts": {name: entry.count for name, entry in manifest.collections.items()}}
    lk.runs.update(run_id, backup=record)
    return record


def create_indexes(lk: Linkage, run_id: str) -> dict[str, Any]:
    summary = describe_outcomes(ensure_indexes(lk.db, lk.settings.collection("index_probe")))
    lk.runs.update(run_id, indexes=summary)
    return summary


def phase_names(step: Step, kind: RunKind) -> list[str]:
    """A step's phases for a run of this kind, in the order they run."""
    return [phase.name for phase in REGISTRY[step].phases(kind)]


def phase_pass(lk: Linkage, run_id: str, step: Step, phase: str) -> Pass:
    ctx = lk.step_context(run_id)
    return REGISTRY[step].phase(phase, ctx.kind).build(ctx)


def _stored_partitions(run: RunRecord, step: Step, phase: str) -> list[Partition] | None:
    stored = (run.model_extra or {}).get("partitions", {}).get(str(step), {}).get(phase)
    return None if stored is None else [Partition.model_validate(p) for p in stored]


def partitions(lk: Linkage, run_id: str, step: Step, phase: str) -> list[Partition]:
    """Split a phase's source into the run's number of ranges of its walk key, once per run (retries reuse them)."""
    run = lk.record(run_id)
    stored = _stored_partitions(run, step, phase)
    if stored is not None:
        return stored
    job = phase_pass(lk, run_id, step, phase)
    cut = split(job.source, job.query, run.params.partitions, job.walk)
    lk.runs.update(run_id, **{f"partitions.{step}.{phase}": [p.model_dump() for p in cut]})
    return cut


def partition_at(lk: Linkage, run_id: str, step: Step, phase: str, index: int) -> Partition:
    """A partition cut earlier by `partitions` (a mapped task finds its range by index)."""
    for partition in _stored_partitions(lk.record(run_id), step, phase) or []:
        if partition.index == index:
            return partition
    raise LinkageError(f"run {run_id} has no partition {index} for {step}/{phase}")


def claim_partition(lk: Linkage, run_id: str, step: Step, phase: str, index: int, owner: str) -> Guard:
    """Claim a partition for this try of its task; the guard it returns stops an older try.

    Airflow retries a partition whose worker it lost; if that worker was only cut off and
    still runs, the two tries would share the run's lease and race on the same journal
    sequence. Each try claims the partition, and a try that finds a newer claim stops
    before its next batch.
    """
    key = f"{step}:{phase}:{index}"  # one field: a numeric path segment means an array index to MongoDB
    lk.runs.claim(run_id, key, owner)

    def still_ours() -> None:
        if lk.runs.claimant(run_id, key) != owner:
            raise LockLostError(f"partition {index} of {step}/{phase} of run {run_id} was taken over by a newer try")

    return still_ours


def run_phase(lk: Linkage, run_id: str, step: Step, phase: str, partition: Partition, guard: Guard,
              *, show_progress: bool = False) -> dict[str, int]:
    """One pass over one partition; its totals go in the run record (the step's counts are their sum)."""
    totals = run_pass(lk.run_context(run_id, guard, show_progress=show_progress),
                      phase_pass(lk, run_id, step, phase), partition)
    lk.runs.update(run_id, **{f"steps.{step}.passes.{phase}:{partition.index}": totals})
    return totals


def step_counts(lk: Linkage, run_id: str, step: Step) -> dict[str, int]:
    """The step's counts by category: the sum of its passes' totals (every phase and partition)."""
    counts = empty_counts()
    for totals in lk.record(run_id).steps.get(step, {}).get("passes", {}).values():
        for category, n in totals.items():
            if category in counts:
                counts[category] += n
    return counts


def record_step(lk: Linkage, run_id: str, step: Step, seconds: float | None = None) -> dict[str, int]:
    counts = step_counts(lk, run_id, step)
    fields: dict[str, Any] = {f"steps.{step}.counts": counts}
    if seconds is not None:
        fields[f"steps.{step}.seconds"] = round(seconds, 3)
    lk.runs.update(run_id, **fields)
    return counts


def run_step(lk: Linkage, run_id: str, step: Step, guard: Guard, *, show_progress: bool = False) -> dict[str, int]:
    """Every phase of a step in this process, the partitions of a phase at once (as Airflow's mapped tasks)."""
    started = time.monotonic()
    for phase in phase_names(step, lk.record(run_id).kind):
        cut = partitions(lk, run_id, step, phase)
        with ThreadPoolExecutor(max_workers=len(cut)) as pool:
            for done in [pool.submit(run_phase, lk, run_id, step, phase, p, guard, show_progress=show_progress)
                         for p in cut]:
                done.result()
    return record_step(lk, run_id, step, time.monotonic() - started)


# -- validation and the verdict ------------------------------------------------------------------------------

def _drift_reviews(lk: Linkage, run_id: str) -> Callable[[list[Finding]], None]:
    """Record the drift validation finds as review items.

    A document this run's own phases already put in the queue keeps its item:
    their reason (why a pair could not be repaired, say) says more.
    """
    reviewed = {rule.name for rule in RULES if rule.judges_the_run}

    def record(findings: list[Finding]) -> None:
        items = {lk.reviews.item_id(f.step, f.oid): f for f in findings if f.rule in reviewed}
        known = lk.reviews.recorded_by_run(run_id, list(items))
        grouped: dict[tuple[Step, str], list[Decision]] = {}
        for item_id, f in items.items():
            if item_id not in known:
                grouped.setdefault((f.step, f.collection), []).append(f.decision())
        for (step, collection), decisions in grouped.items():
            lk.reviews.record(run_id, step, collection, decisions, found_by=VALIDATION)

    return record


def validate_run(lk: Linkage, run_id: str) -> ValidationOutcome:
    """Measure the database and judge the run on what it wrote; stored with the run.

    Violations in links this run wrote decide the verdict; the rest is drift,
    recorded as review items (a real run) and in the run record (any run). The
    coverage is counted on the way; the coverage before the run is that, less
    what the run wrote.
    """
    from linkage.validation.gate import validate

    run = lk.record(run_id)

    def written_by_run(values: list[LinkValue]) -> set[LinkValue]:
        return lk.journal.written_by(run_id, values)

    on_drift = (lambda findings: None) if run.dry_run else _drift_reviews(lk, run_id)
    measured, coverage_after = measure(lk.db, attribute=written_by_run, on_drift=on_drift,
                                       backup_path=(run.backup or {}).get("path"))
    outcome = validate(measured, run.params, lk.settings.docs_dir, run_id)
    if not run.dry_run:
        lk.reviews.resolve_unconfirmed(run_id, VALIDATION)
    drift = {"total": outcome.drift, "by_expectation": {e.name: e.drift for e in outcome.expectations if e.drift}}
    coverage_before = less_written(coverage_after, {} if run.dry_run else lk.journal.links_written(run_id))
    lk.runs.update(run_id, validation=outcome.as_record(), drift=drift, coverage_after=coverage_after,
                   coverage_before=coverage_before)
    return outcome


class Verdict(StrEnum):
    """What happens to a validated run (`verdict`)."""

    KEEP = "keep"  # validation passed (drift may have been found: it is reported, not rolled back)
    ROLL_BACK = "roll_back"  # a document the run wrote broke an expectation, or coverage is too low
    KEEP_FAILED = "keep_failed"  # the same, with rollback_on_failure off: kept, the run ends failed
    NOT_VALIDATED = "not_validated"  # an earlier task failed: nothing to decide yet


def verdict(run: RunRecord) -> Verdict:
    """The one decision on a run after validation (the CLI and the DAG both ask here).

    A dry run wrote nothing, so it is kept whatever its report says.
    """
    if run.validation is None:
        return Verdict.NOT_VALIDATED
    if run.dry_run or run.validation.success:
        return Verdict.KEEP
    return Verdict.ROLL_BACK if run.params.rollback_on_failure else Verdict.KEEP_FAILED


def conclude(lk: Linkage, run_id: str, guard: Guard = no_guard) -> Verdict:
    """Act on the verdict: keep the run, roll it back, or keep it failed."""
    run = lk.record(run_id)
    decided = verdict(run)
    if decided == Verdict.NOT_VALIDATED:
        raise LinkageError(f"run {run_id} has not been validated: nothing to conclude")
    if decided == Verdict.KEEP:
        finalize(lk, run_id)
        return decided
    assert run.validation is not None
    reason = f"validation failed: {run.validation.failure_reason()}"[:500]
    lk.runs.update(run_id, error=reason)
    if decided == Verdict.ROLL_BACK:
        rollback(lk, run_id, guard)
    else:
        finalize(lk, run_id, RunState.FAILED, reason)
    return decided


def finalize(lk: Linkage, run_id: str, state: RunState = RunState.SUCCEEDED,
             error: str | None = None) -> dict[str, Any]:
    """Close the run: its final state, and every step's scratch data for it removed."""
    for spec in REGISTRY.values():
        for name in spec.scratch:
            lk.bookkeeping(name).delete_many({"run_id": run_id})
    lk.runs.finish(run_id, state, error)
    return report(lk, run_id)


def rollback(lk: Linkage, run_id: str, guard: Guard = no_guard) -> dict[str, Any]:
    """Undo a run through its journal, newest batch first (the next read while one is reverted), and close it
    `rolled_back`.

    Only fields that still hold the value the run wrote are restored; a field the
    app changed since keeps the app's value (`kept`). A run already rolled back
    is left as it is (`already_rolled_back`): nothing is touched or counted twice.
    """
    run = lk.record(run_id)
    if run.dry_run:
        raise LinkageError(f"run {run_id} was a dry run: it wrote nothing to roll back")
    if run.state == RunState.ROLLED_BACK:
        return {**(run.rollback or {}), "already_rolled_back": True}
    undone = Reverted()
    flight = InFlight(lk.settings.in_flight)  # the next batches are read while this one is reverted
    try:
        with read_ahead(bounded(lk.journal.records(run_id, newest_first=True), flight), flight) as records:
            for record in records:
                try:
                    guard()
                    undone += revert_batch(lk.db, record)
                finally:
                    flight.release()
    except Exception as exc:
        lk.runs.update(run_id, rollback={**undone._asdict(), "error": str(exc)[:500]})
        lk.runs.finish(run_id, RunState.ROLLBACK_FAILED, f"rollback failed: {exc}"[:500])
        raise
    outcome = {**undone._asdict(), "already_rolled_back": False}
    lk.runs.update(run_id, rollback=outcome)
    finalize(lk, run_id, RunState.ROLLED_BACK, run.error)
    return outcome


def report(lk: Linkage, run_id: str) -> dict[str, Any]:
    """The run's outcome as the CLI's `--json` prints it (CONTRACT §7)."""
    run = lk.record(run_id)
    return {"run_id": run_id, "kind": run.kind.value, "state": run.state.value, "dry_run": run.dry_run,
            "steps": run.counts(), "validation": run.validation.as_record() if run.validation else None,
            "drift": run.drift,
            "backup": (run.backup or {}).get("path"), "rollback": run.rollback, "error": run.error,
            "coverage_before": run.coverage_before, "coverage_after": run.coverage_after}


def raise_alert(lk: Linkage, event: Event, run_id: str, **where: Any) -> Alert:
    """An alert from the run record, logged and kept (the CLI's only channel; Airflow adds email and webhooks)."""
    run = lk.record(run_id)
    if run.validation and run.validation.data_docs:  # where a person at this machine opens them
        where.setdefault("data_docs", str(lk.settings.docs_dir / run.validation.data_docs))
    alert = Alert.from_run(event, run, **where)
    lk.alerts.record(alert, ["log"])
    return alert


# -- the whole run, in one process (the CLI) -------------------------------------------------------------------

def migrate(lk: Linkage, params: MigrationParams, triggered_by: str, *, kind: RunKind = RunKind.MIGRATE,
            new: bool = False, show_progress: bool = False) -> dict[str, Any]:
    """Backup, indexes, the chosen steps, validation, then the verdict; resumable, locked.

    `kind=RECONCILE` is the nightly job: the same run, repairing one-sided pairs
    and linking only what is still unlinked. A dry run takes no lock and no
    backup and writes nothing to the app's collections or the review queue; it
    computes and records the counts and the drift it found.
    """
    from linkage.validation.gate import warm_up

    warm_up()
    run_id, _ = start_run(lk, params, triggered_by, kind=kind, new=new)
    params = lk.params(run_id)
    if params.dry_run:
        for step in params.steps:
            run_step(lk, run_id, step, no_guard, show_progress=show_progress)
        validate_run(lk, run_id)
        conclude(lk, run_id)
        return report(lk, run_id)
    with lk.hold(run_id) as lease:
        try:
            for name, task in (("backup", take_backup), ("create_indexes", create_indexes)):
                started = time.monotonic()
                task(lk, run_id)
                lk.runs.record_timing(run_id, name, time.monotonic() - started)
            for step in params.steps:
                run_step(lk, run_id, step, lease.guard, show_progress=show_progress)
            started = time.monotonic()
            outcome = validate_run(lk, run_id)
            lk.runs.record_timing(run_id, "validate", time.monotonic() - started)
            if not outcome.success:
                raise_alert(lk, Event.VALIDATION_FAILED, run_id)
            decided = conclude(lk, run_id, lease.guard)
        except Exception as exc:
            lk.runs.fail_if_running(run_id, str(exc))
            if lk.record(run_id).state == RunState.ROLLBACK_FAILED:
                raise_alert(lk, Event.ROLLBACK_FAILED, run_id)
            raise
    if decided == Verdict.ROLL_BACK:
        raise_alert(lk, Event.ROLLED_BACK, run_id)
    if outcome.drift:
        raise_alert(lk, Event.DRIFT_FOUND, run_id)
    return report(lk, run_id)
