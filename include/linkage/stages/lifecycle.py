"""The stages that open and close a run: start (or resume) it, look at the database, back it up, create
the indexes; and finish it.

Each is one call for both executors (the CLI's runner and an Airflow task): it
gets the engine handle and the run's id, reads the run record once, and is
safe to run again (a retry or a resumed run picks up where it stopped). The
backfills are `linkage.stages.backfill`, validation `linkage.stages.validate`, the verdict and
its consequences `linkage.stages.conclude` and `linkage.stages.rollback`.
"""

from __future__ import annotations

from typing import Any

from linkage.core.app_schema import APP_COLLECTIONS
from linkage.core.mask import mask_uri
from linkage.core.models import RunKind, RunState
from linkage.mongo import concerns
from linkage.mongo.concurrency import probe_updates, require_kept_updates
from linkage.mongo.connect import server_description
from linkage.mongo.indexes import describe_outcomes, ensure_indexes
from linkage.mongo.sharding import refuse_unshardable
from linkage.relations import REGISTRY
from linkage.run.params import MigrationParams
from linkage.run.record import AirflowRun, RunReport, new_run_id
from linkage.run.session import Linkage
from linkage.stages.backup import check_backup_target


def preflight(lk: Linkage, run_id: str) -> dict[str, Any]:
    """What a person checks before a run (where, which server, how much data), kept with the run; and the backup
    directory, checked now, before the passes spend their time planning. A run that writes also probes whether
    the server keeps concurrent updates (`linkage.mongo.concurrency`), keeps the answer, and is refused if not."""
    run = lk.record(run_id)
    if not run.dry_run:
        check_backup_target(lk, run)
        refuse_unshardable(lk.db, REGISTRY.indexes())
    facts: dict[str, Any] = {
        "mongo_uri": mask_uri(lk.settings.mongo_uri),
        "db": lk.settings.db,
        "server": server_description(lk.db),
        "concerns": concerns.describe(lk.client, lk.read_concern),
        "counts": {name: lk.db[name].estimated_document_count() for name in APP_COLLECTIONS},
        "timezone": lk.settings.timezone,
        "bookkeeping_prefix": lk.settings.prefix,
    }
    if not run.dry_run:
        probe = probe_updates(lk.bookkeeping("update_probe"))
        facts["concurrent_updates"] = {**probe.model_dump(), "app_quiet": lk.settings.app_quiet}
    lk.runs.update(run_id, preflight=facts)
    if not run.dry_run:
        require_kept_updates(probe, app_quiet=lk.settings.app_quiet, what=f"run {run_id}")
    return facts


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


def create_indexes(lk: Linkage, run_id: str) -> dict[str, Any]:
    """The indexes every registered step declares (CONTRACT §4), created where missing."""
    summary = describe_outcomes(ensure_indexes(lk.app, REGISTRY.indexes(), lk.settings.collection("index_probe")))
    lk.runs.update(run_id, indexes=summary)
    return summary


def finalize(lk: Linkage, run_id: str, state: RunState = RunState.SUCCEEDED, error: str | None = None) -> RunReport:
    """Close the run: its final state, and every step's scratch data for it removed."""
    for name in REGISTRY.scratch():
        lk.bookkeeping(name).delete_many({"run_id": run_id})
    lk.runs.finish(run_id, state, error)
    return lk.record(run_id).report()
