"""A run's life: start (or resume) it, and close it. Both executors (the CLI's runner and the Airflow tasks)
open a run with `start_run` and every ending (kept, rolled back, rejected) closes it with `finalize`.

A run is resumed rather than started twice: with an Airflow run's own id that run, otherwise the newest
unfinished run of the kind, so a retried task or a second `linkage migrate` continues it.
"""

from __future__ import annotations

from linkage.core.models import RunKind, RunState
from linkage.relations import REGISTRY
from linkage.run.params import MigrationParams
from linkage.run.record import AirflowRun, RunReport, new_run_id
from linkage.run.session import Linkage


def start_run(lk: Linkage, params: MigrationParams, triggered_by: str, *, kind: RunKind = RunKind.MIGRATE,
              new: bool = False, run_id: str | None = None, airflow: AirflowRun | None = None) -> tuple[str, bool]:
    """Create a run record, or resume one; returns (run_id, resumed).

    With `run_id` (an Airflow run's own id) that run is resumed if it exists, so a
    retried task continues it. Otherwise the newest unfinished run of this kind is
    resumed, unless `new` or a dry run. A database that is not the app's is refused first, before the
    bookkeeping is created.
    """
    lk.require_app(params.steps)
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


def finalize(lk: Linkage, run_id: str, state: RunState = RunState.SUCCEEDED, error: str | None = None) -> RunReport:
    """Close the run: its final state, and every step's scratch data for it removed."""
    for name in REGISTRY.scratch():
        lk.bookkeeping(name).delete_many({"run_id": run_id})
    lk.runs.finish(run_id, state, error)
    return lk.record(run_id).report()
