"""The tasks of linkage's pipeline DAGs: each one call into the engine's stages.

Defined once, at module level; `dag_factory` only maps the run's plan onto them. Every task finds its linkage
run from its own context (`linkage_run_id`), so the Graph shows the pipeline's order, not a fan of XCom edges,
and hears the run's events through Airflow's channel (`AirflowChannel`). A task that writes to the app's
collections skips, visibly, in a dry run; everything else works under the run's lease. `report` ends the DAG
run: failed when the run was rolled back, could not be rolled back or failed (not when a person rejected it),
with the run's one-line summary as its message and as the DAG run's note."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from airflow.sdk import get_current_context, setup, task, teardown

from linkage.airflow.connection import app_session, session
from linkage.airflow.context import fail, linkage_run_id, skip
from linkage.airflow.notifier import AirflowChannel, AlertedFailure, LinkageAlertNotifier
from linkage.airflow.urls import docs_link
from linkage.core.errors import NotTheAppError, UnshardableError, UpdatesLostError
from linkage.core.models import RunKind, RunState
from linkage.relations import REGISTRY
from linkage.run.events import Event, Events
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.record import AirflowRun
from linkage.run.session import Linkage
from linkage.stages import backfill
from linkage.stages.apply import apply_partition
from linkage.stages.backup import take_backup
from linkage.stages.conclude import Verdict, conclude, verdict
from linkage.stages.housekeeping import housekeeping as clean_up
from linkage.stages.indexes import create_indexes as make_indexes
from linkage.stages.preflight import preflight as run_preflight
from linkage.stages.suggest import suggest as suggest_queue
from linkage.stages.validate import validate_run
from linkage.store.lease import Lease, release_run

log = logging.getLogger("linkage.airflow")
RETRY_DELAY = timedelta(seconds=15)
RETRIES: dict[str, Any] = {"retries": 2, "retry_delay": RETRY_DELAY, "retry_exponential_backoff": True}
NOTE = "note"  # the XCom key `report` leaves the run's summary under (the DAG run's note)


@contextmanager
def task_session(context: Any) -> Iterator[Linkage]:
    """The engine for one task, its events delivered by Airflow's channel (email, webhook, log, store)."""
    with session() as lk:
        lk.events = Events([AirflowChannel(context, lk.alerts, lk.settings)])
        yield lk


@contextmanager
def _run(*, writes: bool = False) -> Iterator[tuple[Linkage, str]]:
    """The engine and this task's linkage run, under the run's lease; a task that writes skips in a dry run,
    and every task skips once a person rejected the run (`linkage.airflow.approval`).

    A dry run holds no lease: it writes nothing to the app.
    """
    context = get_current_context()
    run_id = linkage_run_id(context)
    with task_session(context) as lk:
        run = lk.record(run_id)
        if run.state == RunState.REJECTED:
            skip(f"{run.error}: the run writes nothing")
        if run.dry_run:
            if writes:
                skip("dry run: this task writes to the app's collections, so it is skipped")
            yield lk, run_id
            return
        with lk.joined(run_id):
            yield lk, run_id


def take_lease(lk: Linkage, run_id: str, owner: str) -> None:
    """Acquire the run's lease and park it for the tasks that follow (a setup task)."""
    Lease.acquire(lk.lock, run_id, owner, lk.settings.lock_ttl_seconds).park()


def release_lease(run_id: str) -> bool:
    """Release whatever lease the run holds (a teardown task); none on a database that is not the app's."""
    with app_session() as lk:
        released = lk is not None and release_run(lk.lock, run_id)
    log.info("lock %s for %s", "released" if released else "was not held", run_id)
    return released


def outcome(lk: Linkage, run_id: str) -> dict[str, Any]:
    """What the closing tasks hand on (XCom): small, whatever the run's size; the record holds the rest."""
    run = lk.record(run_id)
    return {"linkage_run": run_id, "state": run.state.value, "summary": run.summary()}


def params_from(form: dict[str, Any]) -> MigrationParams:
    """The trigger form's values as the engine's parameters (validated)."""
    known = {*MigrationParams.model_fields, *(t.parameter for t in REGISTRY.thresholds())}
    return MigrationParams.model_validate({k: v for k, v in form.items() if k in known})


@task(doc_md="Connects, records the server, collection counts and configuration, and opens (or, on a retry, "
             "resumes) the linkage run of this DAG run, named after it. Fails without retrying on a database "
             "that is not the app's, or on a server that loses concurrent updates unless LINKAGE_APP_QUIET.")
def preflight(kind: str) -> dict[str, Any]:
    context = get_current_context()
    with session() as lk:
        try:
            run_id, resumed = start_run(
                lk, params_from(context["params"]), f"airflow:{context['dag'].dag_id}/{context['run_id']}",
                kind=RunKind(kind), run_id=linkage_run_id(context),
                airflow=AirflowRun(dag_id=context["dag"].dag_id, dag_run_id=context["run_id"]))
        except NotTheAppError as exc:
            fail(str(exc))  # the connection names another database: no retry can change that
        try:
            facts = run_preflight(lk, run_id)
        except (UpdatesLostError, UnshardableError) as exc:
            fail(str(exc))  # the server loses updates and nobody said the app is quiet, or the shard keys forbid
            # the unique link indexes: no retry can change either
    log.info("%s linkage run %s: %s", "resuming" if resumed else "starting", run_id, facts)
    return {"linkage_run": run_id, **facts}


@setup
@task(doc_md="Takes the per-database migration lease and parks it for the tasks that follow; fails fast naming "
             "the holder; resumes a failed run whose task was cleared. A dry run takes no lease.")
def acquire_lock() -> None:
    run_id = linkage_run_id(get_current_context())
    with session() as lk:
        run = lk.record(run_id)
        if run.dry_run:
            log.info("dry run: writes nothing, so it takes no lock")
            return
        take_lease(lk, run_id, run.triggered_by)
        if run.state == RunState.FAILED:  # a person cleared a failed task (its setup runs again): the run goes on
            lk.runs.resumed(run_id)


@task(doc_md="Backs up, whole, the collections the migration writes (mongodump's layout, manifest verified), the "
             "first task to read the app's documents; a bad backup directory fails the run here, before any write. "
             "Skipped in a dry run.")
def backup() -> dict[str, Any]:
    with _run(writes=True) as (lk, run_id):
        return take_backup(lk, run_id).model_dump()


@task(doc_md="Creates the indexes of CONTRACT §4 (idempotent; fallbacks reported). Skipped in a dry run.")
def create_indexes() -> dict[str, Any]:
    with _run(writes=True) as (lk, run_id):
        return make_indexes(lk, run_id)


@task(trigger_rule="none_failed")
def partitions(step: str, phase: str) -> list[int]:
    """Cuts the phase's source into ranges of its walk key (stored with the run); one mapped instance each."""
    with _run() as (lk, run_id):
        if step not in lk.record(run_id).params.steps:
            skip(f"step {step} not selected for this run")
        return [p.index for p in backfill.partitions(lk, run_id, step, phase)]


def _this_try() -> str:  # who this task instance is, as a journal records it
    ti = get_current_context()["ti"]
    host = getattr(ti, "hostname", None) or socket.gethostname()  # Airflow's name for the worker, as the Grid's
    return f"{ti.task_id}[{ti.map_index}] try {ti.try_number} on {host}:{os.getpid()}"


@task(max_active_tis_per_dagrun=8)
def run_partition(step: str, phase: str, index: int) -> dict[str, int]:
    """One phase over one partition, planned into the journal: batched, resumable (a retry continues, and an
    older try still running, say on a worker cut off from Airflow, stops at its next write)."""
    with _run() as (lk, run_id):
        with backfill.claimed(lk, run_id, step, phase, index, _this_try()):
            return backfill.run_phase(lk, run_id, step, phase, backfill.partition_at(lk, run_id, step, phase, index))


@task(doc_md="Backs up exactly the documents this relation's plan will write (its collections whole when the run "
             "backs up whole) into the run's backup, verified, before its first write. Skipped in a dry run.")
def backup_relation(step: str) -> dict[str, Any]:
    with _run(writes=True) as (lk, run_id):
        return take_backup(lk, run_id, step).model_dump()


@task(max_active_tis_per_dagrun=8, doc_md="Writes one partition of one phase as planned (journaled, conditional; "
      "a retry or a clear goes on from the journal); each batch records this try and host. Skipped in a dry run.")
def write_partition(step: str, phase: str, index: int) -> int:
    with _run(writes=True) as (lk, run_id):
        owner = _this_try()
        with backfill.claimed(lk, run_id, step, f"write_{phase}", index, owner):
            return apply_partition(lk, run_id, step, phase, index, owner)


@task(trigger_rule="none_failed")
def record_counts(step: str) -> dict[str, int]:
    """The step's counts by category, summed over every partition's journal."""
    with _run() as (lk, run_id):
        return backfill.record_step(lk, run_id, step)


@task(doc_md="Runs the Great Expectations suites and judges the run on what it wrote: fails (no retry) when a "
             "document the run wrote breaks an expectation or coverage is below its threshold. Violations the run "
             "did not cause are drift: review items, and a `drift found` alert once the run is kept. The log ends "
             "with every expectation's observed value and a link to this run's Data Docs. In a dry run it "
             "reports and never fails.", trigger_rule="none_failed", retries=0)
def validate() -> dict[str, Any]:
    with _run() as (lk, run_id):
        outcome = validate_run(lk, run_id)
        dry_run = lk.record(run_id).dry_run
    log.info("validation of %s: %s\n%s\ndata docs: %s", run_id, "passed" if outcome.success else "FAILED",
             outcome.table(), docs_link(outcome.data_docs))
    if not outcome.success and not dry_run:
        raise AlertedFailure(f"validation failed: {outcome.failure_reason()}")
    return {"success": outcome.success, "drift": outcome.drift, "data_docs": docs_link(outcome.data_docs)}


@task.branch(doc_md="Asks the one verdict (`linkage.stages.conclude.verdict`): `finalize` when the run is kept, "
                    "`rollback` when it must be undone, nothing when an earlier task failed.",
             trigger_rule="all_done")
def decide() -> list[str]:
    with app_session() as lk:
        if lk is None:  # preflight refused the database: there is no run to decide on
            return []
        decided = verdict(lk.record(linkage_run_id(get_current_context())))
    return {Verdict.KEEP: ["finalize"], Verdict.KEEP_FAILED: ["finalize"], Verdict.ROLL_BACK: ["rollback"],
            Verdict.NOT_VALIDATED: []}[decided]


@task(doc_md="Keeps the run: marks it succeeded (or failed, when validation failed and rollback_on_failure is "
             "off), removes its scratch data, and sends the `drift found` alert when it found drift.")
def finalize() -> dict[str, Any]:
    with _run() as (lk, run_id):
        conclude(lk, run_id)
        return outcome(lk, run_id)


@task(doc_md="Undoes the run through its journal, keeping the app's later writes.", retries=2,
      retry_delay=RETRY_DELAY, retry_exponential_backoff=True)
def rollback() -> dict[str, Any]:
    with _run() as (lk, run_id):
        conclude(lk, run_id)
        return outcome(lk, run_id)


@task(doc_md="Ends the DAG run with the linkage run's outcome: its one-line summary becomes the DAG run's note, "
             "and the task (so the DAG run) fails when the run was rolled back or failed.",
      trigger_rule="all_done", retries=0)
def report() -> dict[str, Any]:
    context = get_current_context()
    with app_session() as lk:
        if lk is None:
            raise AlertedFailure("preflight refused the database: it is not the app's (see the preflight log)")
        result = outcome(lk, linkage_run_id(context))
    context["ti"].xcom_push(key=NOTE, value=result["summary"])
    log.info("linkage run %s: %s", result["linkage_run"], result["summary"])
    if result["state"] not in (RunState.SUCCEEDED, RunState.REJECTED):  # a rejection is an answer, not a failure
        raise AlertedFailure(result["summary"])  # the task or the rollback that ended the run sent its alert
    return result


@task(doc_md="Refits the suggestion model and writes evidence and a suggested decision (with its match probability "
             "and weights) on the open review items, whatever the run's outcome; writes nothing to the app. "
             "Skipped in a dry run, and when preflight refused the database.", trigger_rule="all_done")
def suggest() -> dict[str, Any]:
    with app_session() as lk:
        if lk is None:
            skip("preflight refused the database: there is no queue to suggest on")
    with _run(writes=True) as (lk, run_id):
        return suggest_queue(lk, run_id)


@task(doc_md="Cleans up after the run, whatever its outcome: backups nothing needs, journals past the rollback "
             "window, resolved review items, alerts and run records past their retention (docs/RUNBOOK.md, Day 2). "
             "Skipped in a dry run.", trigger_rule="all_done")
def housekeeping() -> dict[str, Any]:
    with _run(writes=True) as (lk, run_id):
        return clean_up(lk, run_id)


@teardown
@task(doc_md="Releases the lease whatever happened (teardown task).")
def release_lock() -> bool:
    return release_lease(linkage_run_id(get_current_context()))


def record_failure(context: Any) -> None:
    """on_failure_callback: the run record says which task failed and why."""
    reason = f"task {context['ti'].task_id} failed: {context.get('exception')}"
    with app_session() as lk:
        if lk is not None:
            lk.runs.fail_if_running(linkage_run_id(context), reason)


def on_failure(event: Event) -> list[Callable[[Any], None]]:
    """The failure callbacks of a task: its alert, then the run record."""
    return [LinkageAlertNotifier(event), record_failure]
