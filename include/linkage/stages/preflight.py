"""The preflight stage: what a person checks before a run, kept with the run, and the refusals that must come
before anything is planned or written (a backup directory that cannot be written, an index a sharded cluster
cannot build, a server that loses concurrent updates while the app writes).

Like every stage it is one call for both executors, gets the engine handle and the run's id, and is safe to
run again.
"""

from __future__ import annotations

from typing import Any

from linkage.core.app_schema import APP_COLLECTIONS
from linkage.core.mask import mask_uri
from linkage.mongo import concerns
from linkage.mongo.concurrency import probe_updates, require_kept_updates
from linkage.mongo.connect import server_description
from linkage.mongo.sharding import refuse_unshardable
from linkage.relations import REGISTRY
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
