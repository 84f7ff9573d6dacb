"""The backup stage: a run backs up what it is about to write, verified, before the first write (CONTRACT §5).

A migration backs up the collections its steps write, whole, before it reads
anything else. A reconcile (or a decisions run) backs up each relation between
planning it and writing it: the relation's writes are all in the journal by
then, so it backs up exactly the documents it is about to change, their full
before-images: its cost follows the drift, not the database. Each relation's
collections go into the run's one backup (one manifest). A reconcile backs
up whole when asked (`full_backup`), or when the newest full backup is older
than `LINKAGE_FULL_BACKUP_EVERY_DAYS`. A verified backup is reused by a
resumed run.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from linkage.core.models import RunKind
from linkage.relations import REGISTRY
from linkage.run.record import RunRecord, run_slug
from linkage.run.record_parts import BackupRecord
from linkage.run.session import Linkage
from linkage.store import backup as backups
from linkage.store.backup import Scope
from linkage.store.journal import BatchState


def scope_of(lk: Linkage, run: RunRecord) -> Scope:
    """Whole collections for a migration or when asked or due; otherwise the run's own documents."""
    if run.kind == RunKind.MIGRATE or run.params.full_backup:
        return Scope.FULL
    every = lk.settings.full_backup_every_days
    if every and not lk.runs.has_full_backup_since(lk.clock() - timedelta(days=every)):
        return Scope.FULL
    return Scope.TARGETED


def planned_documents(lk: Linkage, run_id: str, step: str | None = None) -> dict[str, list[Any]]:
    """Every document the run's (or one step's) planned batches write, by collection (each once)."""
    ids: dict[str, dict[str, Any]] = {}
    states = (BatchState.PLANNED, BatchState.PENDING, BatchState.APPLIED)
    for record in lk.journal.records(run_id, states=states, step=step):
        for write in record.writes:
            ids.setdefault(write.coll, {})[repr(write.oid)] = write.oid
    return {coll: list(found.values()) for coll, found in ids.items()}


def check_backup_target(lk: Linkage, run: RunRecord, documents: dict[str, list[Any]] | None = None,
                        steps: list[str] | None = None) -> None:
    """The backup directory exists, is a writable directory, and has room for the backup's estimate (a targeted
    backup's size is known once it is planned: until then, only the first two are checked)."""
    collections = REGISTRY.writes(run.params.steps if steps is None else steps)
    full = scope_of(lk, run) == Scope.FULL
    needed = 0 if not full and documents is None else backups.estimate_bytes(
        lk.db, collections, lk.settings.backup_gzip,
        None if full else {coll: len(ids) for coll, ids in (documents or {}).items()})
    backups.check_target(lk.settings.backup_dir, needed, create=lk.settings.create_backup_dir)


def take_backup(lk: Linkage, run_id: str, step: str | None = None) -> BackupRecord:
    """Back up what the run (or, before it writes, one step of it) is about to write (see the module docstring);
    a verified backup that holds those collections is reused."""
    run = lk.record(run_id)
    steps = run.params.steps if step is None else [step]
    collections = REGISTRY.writes(steps)
    if run.backup and run.backup.verified and set(collections) <= set(run.backup.counts):
        backups.verify(Path(run.backup.path))
        return run.backup
    ids = None if scope_of(lk, run) == Scope.FULL else planned_documents(lk, run_id, step)
    check_backup_target(lk, run, ids or {}, steps)
    root = lk.settings.backup_dir / run_slug(run_id)
    manifest = backups.dump(lk.db, collections, root, run_id, compressed=lk.settings.backup_gzip, ids=ids,
                            created_at=lk.clock())
    backups.verify(root)
    record = BackupRecord(path=str(root), verified=True, gzip=manifest.gzip, scope=manifest.scope,
                          bytes=backups.size_on_disk(root),
                          counts={name: entry.count for name, entry in manifest.collections.items()})
    lk.runs.update(run_id, backup=record.model_dump())
    return record
