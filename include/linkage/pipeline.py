"""The tasks a migration is made of, shared by the CLI and the Airflow DAGs.

Each public function here is one task: it opens nothing itself (it gets a
`Linkage` handle), reads what it needs from the run record and the journal,
and is safe to run again (a retry or a resumed run picks up where it stopped).
`migrate` strings them together for the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from linkage import backup as backups
from linkage import validation
from linkage.database import app_database, connect, server_description
from linkage.engine import Partition, Pass, RunContext, run_pass, split
from linkage.errors import LinkageError
from linkage.indexes import describe_outcomes, ensure_indexes
from linkage.journal import Journal, revert_batch
from linkage.lock import Lease
from linkage.masking import mask_uri
from linkage.models import MigrationParams, RunState, Step, empty_counts
from linkage.reviews import ReviewQueue
from linkage.runs import RunStore, new_run_id
from linkage.settings import Settings
from linkage.steps import order_delivery, user_customer
from linkage.validation import ValidationOutcome
from linkage.validation.metrics import measure

APP_COLLECTIONS = ["users", "customers_v2", "orders", "delivery_statuses"]
STEP_COLLECTIONS = {Step.ORDER_DELIVERY: ["delivery_statuses"], Step.USER_CUSTOMER: ["users", "customers_v2"]}
MIGRATE, RECONCILE = "migrate", "reconcile"


def step_phases(step: Step, kind: str = MIGRATE) -> list[str]:
    """Phases of a step in order; `resolve` is a single task, the rest are scans.

    Reconciliation adds `repair` (one-sided pairs) to the user-customer step.
    """
    if step == Step.ORDER_DELIVERY:
        return list(order_delivery.PHASES)
    return ["keys", "plan", "resolve", "apply", *(["repair"] if kind == RECONCILE else [])]


class Linkage:
    """The app database and linkage's bookkeeping collections for one setting."""

    def __init__(self, settings: Settings, client: MongoClient | None = None) -> None:
        self.settings = settings
        self.client = client or connect(settings)
        self.db = app_database(self.client, settings)
        bookkeeping = self.db
        self.runs = RunStore(bookkeeping[settings.collection("runs")])
        self.journal = Journal(bookkeeping[settings.collection("journal")])
        self.reviews = ReviewQueue(bookkeeping[settings.collection("review")])
        self.lock = bookkeeping[settings.collection("lock")]
        self.keys = bookkeeping[settings.collection("customer_keys")]
        self.plan = bookkeeping[settings.collection("link_plan")]

    def ensure_bookkeeping(self) -> None:
        self.runs.ensure_indexes()
        self.journal.ensure_indexes()
        self.reviews.ensure_indexes()

    def close(self) -> None:
        self.client.close()

    def params(self, run_id: str) -> MigrationParams:
        return MigrationParams.model_validate(self.runs.get(run_id)["params"])

    @contextmanager
    def hold(self, run_id: str) -> Iterator[Lease]:
        """Take the lease for `run_id` (heartbeating) and release it at the end (the CLI)."""
        owner = self.runs.get(run_id)["triggered_by"]
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

    def context(self, run_id: str, guard: Callable[[], None], *, show_progress: bool = False) -> RunContext:
        params = self.params(run_id)
        return RunContext(db=self.db, run_id=run_id, journal=self.journal, reviews=self.reviews,
                          batch_size=params.batch_size, dry_run=params.dry_run, guard=guard,
                          show_progress=show_progress)

    def workspace(self, run_id: str) -> user_customer.Workspace:
        return user_customer.Workspace(self.db, self.keys, self.plan, run_id)


# -- tasks ---------------------------------------------------------------------

def preflight(lk: Linkage) -> dict[str, Any]:
    """What a person checks before a run: where, which server, how much data."""
    return {
        "mongo_uri": mask_uri(lk.settings.mongo_uri),
        "db": lk.settings.db,
        "server": server_description(lk.db),
        "counts": {name: lk.db[name].estimated_document_count() for name in APP_COLLECTIONS},
        "timezone": lk.settings.timezone,
        "bookkeeping_prefix": lk.settings.prefix,
    }


def start_run(lk: Linkage, params: MigrationParams, triggered_by: str, *, kind: str = MIGRATE,
              new: bool = False, run_id: str | None = None) -> tuple[str, bool]:
    """Create a run record, or resume one; returns (run_id, resumed).

    With `run_id` (an Airflow run's own id) that run is resumed if it exists, so a
    retried task continues it. Otherwise the newest unfinished run of this kind is
    resumed, unless `new` or a dry run.
    """
    lk.ensure_bookkeeping()
    if run_id is not None and lk.runs.coll.find_one({"_id": run_id}, {"_id": 1}):
        lk.runs.resumed(run_id)
        return run_id, True
    if run_id is None and not new and not params.dry_run:
        unfinished = lk.runs.newest_unfinished(kind)
        if unfinished is not None:
            lk.runs.resumed(unfinished["_id"])
            return unfinished["_id"], True
    run_id = run_id or new_run_id("plan" if params.dry_run else kind)
    lk.runs.create(kind, params, triggered_by, run_id)
    return run_id, False


def take_backup(lk: Linkage, run_id: str) -> dict[str, Any]:
    """Back up the collections the run's steps write; a verified backup is reused."""
    run = lk.runs.get(run_id)
    if run.get("backup", {}).get("verified"):
        backups.verify(Path(run["backup"]["path"]))
        return run["backup"]
    params = MigrationParams.model_validate(run["params"])
    collections = sorted({c for step in params.steps for c in STEP_COLLECTIONS[step]})
    root = lk.settings.backup_dir / run_id
    manifest = backups.dump(lk.db, collections, root, run_id, compressed=lk.settings.backup_gzip)
    backups.verify(root)
    record = {"path": str(root.resolve()), "verified": True, "gzip": manifest.gzip,
              "counts": {name: entry.count for name, entry in manifest.collections.items()}}
    lk.runs.update(run_id, backup=record)
    return record


def create_indexes(lk: Linkage, run_id: str) -> dict[str, Any]:
    summary = describe_outcomes(ensure_indexes(lk.db, lk.settings.collection("index_probe")))
    lk.runs.update(run_id, indexes=summary)
    return summary


def phase_pass(lk: Linkage, run_id: str, step: Step, phase: str) -> Pass:
    """The pass for one phase; a reconciliation reads only unlinked documents (by index)."""
    only_unlinked = lk.runs.get(run_id).get("kind") == RECONCILE
    if step == Step.ORDER_DELIVERY:
        return order_delivery.backfill_pass(lk.db, lk.settings.tz, phase, only_unlinked=only_unlinked)
    ws = lk.workspace(run_id)
    ws.ensure_indexes()
    passes = {"keys": lambda: user_customer.keys_pass(ws),
              "plan": lambda: user_customer.plan_pass(ws, only_unlinked=only_unlinked),
              "apply": lambda: user_customer.apply_pass(ws),
              "repair": lambda: user_customer.repair_pass(ws, lk.reviews.coll)}
    return passes[phase]()


def _stored_partitions(lk: Linkage, run_id: str, step: Step, phase: str) -> list[Partition] | None:
    """The phase's partitions as cut for this run; `resolve` is one task, never cut."""
    if phase == "resolve":
        return [Partition()]
    stored = lk.runs.get(run_id).get("partitions", {}).get(str(step), {}).get(phase)
    return None if stored is None else [Partition.model_validate(p) for p in stored]


def partitions(lk: Linkage, run_id: str, step: Step, phase: str, parts: int) -> list[Partition]:
    """Split a phase's source into ranges of its walk key, once per run (retries reuse them)."""
    stored = _stored_partitions(lk, run_id, step, phase)
    if stored is not None:
        return stored
    job = phase_pass(lk, run_id, step, phase)
    cut = split(job.source, job.query, parts, job.walk)
    lk.runs.update(run_id, **{f"partitions.{step}.{phase}": [p.model_dump() for p in cut]})
    return cut


def partition_at(lk: Linkage, run_id: str, step: Step, phase: str, index: int) -> Partition:
    """A partition cut earlier by `partitions` (a mapped task finds its range by index)."""
    for partition in _stored_partitions(lk, run_id, step, phase) or []:
        if partition.index == index:
            return partition
    raise LinkageError(f"run {run_id} has no partition {index} for {step}/{phase}")


def run_phase(lk: Linkage, run_id: str, step: Step, phase: str, partition: Partition, guard: Callable[[], None],
              *, show_progress: bool = False) -> dict[str, int]:
    ctx = lk.context(run_id, guard, show_progress=show_progress)
    if phase == "resolve":
        return user_customer.resolve_conflicts(ctx, lk.workspace(run_id))
    return run_pass(ctx, phase_pass(lk, run_id, step, phase), partition)


def step_counts(lk: Linkage, run_id: str, step: Step) -> dict[str, int]:
    """The step's counts by category, summed over its journal (all phases and partitions)."""
    totals = lk.journal.totals(run_id, step)
    counts = empty_counts()
    counts.update({k: v for k, v in totals.items() if k in counts})
    return counts


def record_step(lk: Linkage, run_id: str, step: Step, seconds: float | None = None) -> dict[str, int]:
    counts = step_counts(lk, run_id, step)
    fields: dict[str, Any] = {f"steps.{step}.counts": counts}
    if seconds is not None:
        fields[f"steps.{step}.seconds"] = round(seconds, 3)
    lk.runs.update(run_id, **fields)
    return counts


def run_step(lk: Linkage, run_id: str, step: Step, guard: Callable[[], None], *, parts: int = 1,
             show_progress: bool = False) -> dict[str, int]:
    """Every phase of a step, partition after partition, in this process."""
    started = time.monotonic()
    for phase in step_phases(step, lk.runs.get(run_id)["kind"]):
        for partition in partitions(lk, run_id, step, phase, parts):
            run_phase(lk, run_id, step, phase, partition, guard, show_progress=show_progress)
    return record_step(lk, run_id, step, time.monotonic() - started)


def validate_run(lk: Linkage, run_id: str) -> ValidationOutcome:
    """Measure the database and judge it with the run's expectations; stored with the run."""
    run = lk.runs.get(run_id)
    measured = measure(lk.db, lk.reviews, run.get("backup", {}).get("path"))
    outcome = validation.validate(measured, MigrationParams.model_validate(run["params"]),
                                  lk.settings.docs_dir, run_id)
    lk.runs.update(run_id, validation={**outcome.model_dump(), "failed": [e.name for e in outcome.failed]})
    return outcome


def failure_reason(outcome: ValidationOutcome) -> str:
    return "validation failed: " + "; ".join(f"{e.name} observed {e.observed} (expected {e.threshold})"
                                               for e in outcome.failed)


def conclude(lk: Linkage, run_id: str, outcome: ValidationOutcome, guard: Callable[[], None]) -> dict[str, Any]:
    """Keep the run when validation passed; otherwise roll it back (if asked) or fail it."""
    if outcome.success:
        return finalize(lk, run_id)
    reason = failure_reason(outcome)
    lk.runs.update(run_id, error=reason[:500])
    if lk.params(run_id).rollback_on_failure:
        rollback(lk, run_id, guard)
        return report(lk, run_id)
    return finalize(lk, run_id, RunState.FAILED, reason[:500])


def finalize(lk: Linkage, run_id: str, state: RunState = RunState.SUCCEEDED, error: str | None = None) -> dict[str, Any]:
    """Close the run: final state, and the per-run scratch data removed."""
    lk.keys.delete_many({"run_id": run_id})
    lk.runs.finish(run_id, state, error)
    return report(lk, run_id)


def rollback(lk: Linkage, run_id: str, guard: Callable[[], None] = lambda: None) -> dict[str, int]:
    """Undo a run through its journal, newest batch first, and close it `rolled_back`.

    Only fields that still hold the value the run wrote are restored; a field the
    app changed since keeps the app's value (counted as `kept`).
    """
    run = lk.runs.get(run_id)
    if run.get("dry_run"):
        raise LinkageError(f"run {run_id} was a dry run: it wrote nothing to roll back")
    restored = kept = 0
    try:
        for record in lk.journal.records(run_id, newest_first=True):
            guard()
            if record.writes:
                n = revert_batch(lk.db, record)
                restored, kept = restored + n, kept + len(record.writes) - n
    except Exception as exc:
        lk.runs.update(run_id, rollback={"restored": restored, "kept": kept, "error": str(exc)[:500]})
        lk.runs.finish(run_id, RunState.ROLLBACK_FAILED, f"rollback failed: {exc}")
        raise
    outcome = {"restored": restored, "kept": kept}
    lk.runs.update(run_id, rollback=outcome)
    finalize(lk, run_id, RunState.ROLLED_BACK, run.get("error"))
    return outcome


def report(lk: Linkage, run_id: str) -> dict[str, Any]:
    """The run's outcome as the CLI's `--json` prints it (SPEC §7)."""
    run = lk.runs.get(run_id)
    steps = {step: data.get("counts", empty_counts()) for step, data in run.get("steps", {}).items()}
    return {"run_id": run_id, "state": run["state"], "dry_run": run.get("dry_run", False), "steps": steps,
            "validation": run.get("validation"), "backup": run.get("backup", {}).get("path"),
            "rollback": run.get("rollback"), "error": run.get("error")}


# -- the whole migration, in one process (the CLI) ---------------------------------

def migrate(lk: Linkage, params: MigrationParams, triggered_by: str, *, kind: str = MIGRATE, new: bool = False,
            show_progress: bool = False) -> dict[str, Any]:
    """Backup, indexes, the chosen backfills, validation, then keep or roll back; resumable, locked.

    `kind=RECONCILE` is the nightly job: the same run, reading only unlinked
    documents and repairing one-sided pairs.

    A dry run takes no lock and no backup and writes nothing to the app's
    collections; it only computes and records the counts.
    """
    run_id, _ = start_run(lk, params, triggered_by, kind=kind, new=new)
    params = lk.params(run_id)
    if params.dry_run:
        for step in params.steps:
            run_step(lk, run_id, step, lambda: None, show_progress=show_progress)
        return finalize(lk, run_id)
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
            return conclude(lk, run_id, outcome, lease.guard)
        except Exception as exc:
            if lk.runs.get(run_id)["state"] == RunState.RUNNING:
                lk.runs.finish(run_id, RunState.FAILED, str(exc)[:500])
            raise


