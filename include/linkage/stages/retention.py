"""Which backups are kept, and why: a policy a backup volume can be sized by (docs/RUNBOOK.md "Day 2").

A backup is kept while anything needs it: its run is not finished, its run can
still be rolled back (the rollback window, `LINKAGE_REVERSIBLE_DAYS`), it is the
newest full backup, it is among the newest `LINKAGE_BACKUP_KEEP` verified
backups of its kind of run, or it is younger than `LINKAGE_BACKUP_KEEP_DAYS`. A
folder that is not a backup linkage can read (no manifest, no run record) is
never deleted: it is listed as unknown. Everything else is deleted after a run
ends, and the run record says what went.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from linkage.core.clock import as_utc
from linkage.core.errors import LinkageError
from linkage.core.models import RunState
from linkage.run.record import RunRecord
from linkage.run.session import Linkage
from linkage.store import backup as backups
from linkage.store.backup import Scope


class BackupEntry(BaseModel):
    """One folder under the backup directory, as `linkage backups` lists it."""

    path: str
    run_id: str | None
    kind: str | None
    scope: Scope | None
    bytes: int
    created_at: datetime | None
    verified: bool
    needed: bool = True
    why: str = ""


def _entry(lk: Linkage, folder: Path) -> tuple[BackupEntry, RunRecord | None]:
    size = backups.size_on_disk(folder)
    try:
        manifest = backups.load_manifest(folder)
    except (LinkageError, ValueError):
        return BackupEntry(path=str(folder), run_id=None, kind=None, scope=None, bytes=size, created_at=None,
                           verified=False, why="unknown: no readable manifest (kept; delete it by hand)"), None
    found = lk.runs.find(manifest.run_id)
    run = RunRecord.model_validate(found) if found else None
    verified = bool(run and run.backup and run.backup.verified and run.backup.path == str(folder))
    return BackupEntry(path=str(folder), run_id=manifest.run_id, kind=run.kind.value if run else None,
                       scope=manifest.scope, bytes=size, created_at=as_utc(manifest.created_at),
                       verified=verified), run


def _why_kept(entry: BackupEntry, run: RunRecord | None, lk: Linkage, now: datetime, rank: int) -> str | None:
    """Why the backup is still needed, or None."""
    settings = lk.settings
    if run is None:
        return "unknown: no run record of this database names it (kept; delete it by hand)"
    if run.state == RunState.RUNNING:
        return "its run is not finished"
    if run.is_reversible(settings.reversible_days, now):
        return f"its run can be rolled back until {run.reversible_until(settings.reversible_days):%Y-%m-%d}"
    if entry.verified and rank < settings.backup_keep:
        return f"among the newest {settings.backup_keep} verified backups of {run.kind} runs"
    if entry.created_at and now - entry.created_at < timedelta(days=settings.backup_keep_days):
        return f"younger than {settings.backup_keep_days} days"
    return None


def inventory(lk: Linkage, now: datetime | None = None) -> list[BackupEntry]:
    """Every folder under the backup directory, newest first, each marked needed (and why) or not."""
    now = now or lk.clock()
    root = lk.settings.backup_dir
    found = [_entry(lk, folder) for folder in sorted(root.iterdir()) if folder.is_dir()] if root.is_dir() else []
    found.sort(key=lambda pair: pair[0].created_at or datetime.max.replace(tzinfo=timezone.utc), reverse=True)
    ranks: dict[str, int] = {}
    newest_full = next((e.path for e, run in found if e.scope == Scope.FULL and e.verified), None)
    for entry, run in found:
        if entry.run_id is None:
            continue  # unknown: kept, its reason already says so
        kind = entry.kind or "?"
        why = "the newest full backup" if entry.path == newest_full else \
            _why_kept(entry, run, lk, now, ranks.get(kind, 0))
        if entry.verified:
            ranks[kind] = ranks.get(kind, 0) + 1
        entry.needed, entry.why = why is not None, why or "no longer needed"
    return [entry for entry, _ in found]


class Pruned(BaseModel):
    deleted: list[BackupEntry]
    kept: int
    bytes_freed: int

    def as_record(self) -> dict[str, Any]:
        return {"deleted": [e.path for e in self.deleted], "kept": self.kept, "bytes_freed": self.bytes_freed}


def prune(lk: Linkage, *, dry_run: bool = False, now: datetime | None = None) -> Pruned:
    """Delete the backups nothing needs any more (with `dry_run`, only say which)."""
    entries = inventory(lk, now)
    doomed = [entry for entry in entries if not entry.needed]
    if not dry_run:
        for entry in doomed:
            shutil.rmtree(entry.path)
    return Pruned(deleted=doomed, kept=len(entries) - len(doomed), bytes_freed=sum(e.bytes for e in doomed))


def disk(lk: Linkage) -> dict[str, Any]:
    """What the backups take and what is left at the backup path (`linkage status`, the view)."""
    root = lk.settings.backup_dir
    probe = root if root.exists() else next((p for p in root.parents if p.exists()), Path("/"))
    return {"path": str(root), "used_bytes": backups.size_on_disk(root) if root.is_dir() else 0,
            "free_bytes": shutil.disk_usage(probe).free}
