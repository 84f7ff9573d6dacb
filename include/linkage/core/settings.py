"""Where linkage connects and how it behaves: arguments first, then `LINKAGE_*`, then defaults.

This is the only module that reads the environment. Everything linkage keeps on
disk (backups, Data Docs) lives under one home directory, `LINKAGE_HOME`, by
default `$XDG_DATA_HOME/linkage` (`~/.local/share/linkage`), never relative to
whatever directory a command or a worker happens to start in.
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator, model_validator

DEFAULT_URI = "mongodb://127.0.0.1:27017/"
#: Statements per write command, at most (`linkage.mongo.bulk`: FerretDB hangs at 100 matching ones on SQLite,
#: 50 on PostgreSQL; below both, for two writers at once, at a measured few percent on nx).
DEFAULT_WRITE_CHUNK = 40

#: Setting name -> environment variable.
ENVIRONMENT = {
    "mongo_uri": "LINKAGE_MONGO_URI",
    "db": "LINKAGE_DB",
    "timezone": "LINKAGE_TIMEZONE",
    "prefix": "LINKAGE_PREFIX",
    "home": "LINKAGE_HOME",
    "backup_dir": "LINKAGE_BACKUP_DIR",
    "docs_dir": "LINKAGE_DOCS_DIR",
    "lock_ttl_seconds": "LINKAGE_LOCK_TTL_SECONDS",
    "server_timeout_ms": "LINKAGE_SERVER_TIMEOUT_MS",
    "progress_interval": "LINKAGE_PROGRESS_INTERVAL",
    "alert_emails": "LINKAGE_ALERT_EMAILS",
    "conn_id": "LINKAGE_CONN_ID",
    "in_flight": "LINKAGE_IN_FLIGHT",
    "write_chunk": "LINKAGE_WRITE_CHUNK",
    "app_quiet": "LINKAGE_APP_QUIET",
    "full_backup_every_days": "LINKAGE_FULL_BACKUP_EVERY_DAYS",
    "reversible_days": "LINKAGE_REVERSIBLE_DAYS",
    "backup_keep": "LINKAGE_BACKUP_KEEP",
    "backup_keep_days": "LINKAGE_BACKUP_KEEP_DAYS",
    "review_retention_days": "LINKAGE_REVIEW_RETENTION_DAYS",
    "alert_retention_days": "LINKAGE_ALERT_RETENTION_DAYS",
    "run_retention_days": "LINKAGE_RUN_RETENTION_DAYS",
    "drift_reminder_days": "LINKAGE_DRIFT_REMINDER_DAYS",
    "approvers": "LINKAGE_APPROVERS",
    "retry_seconds": "LINKAGE_RETRY_SECONDS",
    "approval_timeout_hours": "LINKAGE_APPROVAL_TIMEOUT_HOURS",
}


def default_home() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "linkage"


class Settings(BaseModel):
    """Connection and bookkeeping settings shared by every command and task."""

    mongo_uri: str = DEFAULT_URI
    db: str = "app"
    timezone: str = "Asia/Kolkata"
    prefix: str = "linkage_"
    home: Path
    backup_dir: Path
    #: True when `backup_dir` is the default under `home`, which linkage may create; a directory
    #: given explicitly must exist (a missing one is an unmounted volume, not a folder to make).
    create_backup_dir: bool = False
    backup_gzip: bool = True
    docs_dir: Path
    lock_ttl_seconds: float = Field(default=120.0, gt=1)
    server_timeout_ms: int = Field(default=5000, gt=0)
    #: How long a request refused by a failover (an election, a chunk migration) is retried before the run fails
    #: (`linkage.mongo.transient`): longer than a slow election's 30 s.
    retry_seconds: float = Field(default=60.0, ge=0)
    progress_interval: float = Field(default=2.0, ge=0)
    alert_emails: str | None = None
    conn_id: str = "mongo_default"
    #: Batches a pass (or a rollback) reads ahead of the one it is writing, at most, in flight together.
    in_flight: int = Field(default=3, ge=1, le=64)
    write_chunk: int = Field(default=DEFAULT_WRITE_CHUNK, ge=1, le=100_000)
    #: A person says the app is not writing: only then does linkage write on a server that loses concurrent
    #: updates of one document (`linkage.mongo.concurrency`).
    app_quiet: bool = False
    #: A reconcile backs up whole when the newest full backup is older than this; 0: only when asked.
    full_backup_every_days: int = Field(default=0, ge=0)
    # -- day two: how long things are kept (docs/RUNBOOK.md "Day 2") --
    #: A run can be rolled back for this long; then its journal is pruned and its record says so.
    reversible_days: int = Field(default=30, ge=1)
    #: Backups kept beyond those still needed: the newest N of each kind of run, and those younger than D days.
    backup_keep: int = Field(default=7, ge=1)
    backup_keep_days: int = Field(default=14, ge=0)
    review_retention_days: int = Field(default=90, ge=1)  # resolved review items
    alert_retention_days: int = Field(default=90, ge=1)
    run_retention_days: int = Field(default=365, ge=1)  # run records, once no longer reversible
    #: While drift stays open, a reminder digest this often (0: never).
    drift_reminder_days: int = Field(default=7, ge=0)
    # -- people's decisions (docs/RUNBOOK.md "Clearing the review queue") --
    #: The Airflow users who may approve a `linkage_apply_decisions` run, comma-separated (none: any user
    #: Airflow lets respond), and how long the request waits before it rejects by default.
    approvers: str | None = None
    approval_timeout_hours: float = Field(default=24.0, gt=0, le=24 * 30)

    @model_validator(mode="after")
    def _runs_outlive_their_window(self) -> Settings:
        if self.run_retention_days < self.reversible_days:
            raise ValueError("run_retention_days must be at least reversible_days: a run record outlives its journal")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _paths_under_home(cls, data: dict[str, object]) -> dict[str, object]:
        """Backups and Data Docs default to the home directory; every path is absolute."""
        home = Path(str(data.get("home") or default_home())).expanduser().absolute()
        defaults = {"home": home, "backup_dir": home / "backups", "docs_dir": home / "data_docs"}
        paths = {key: Path(str(data.get(key) or default)).expanduser().absolute() for key, default in defaults.items()}
        return {**data, **paths, "create_backup_dir": not data.get("backup_dir")}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def collection(self, name: str) -> str:
        """Name of a bookkeeping collection, e.g. `runs` -> `linkage_runs`."""
        return f"{self.prefix}{name}"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from `LINKAGE_*` variables; explicit overrides win when not None. An override given empty
        (`--db ''`) is refused: it names nothing, and must not fall back to a default silently (an empty
        variable does: unset)."""
        empty = [key for key, value in overrides.items() if isinstance(value, str) and not value.strip()]
        if empty:
            raise ValueError(f"an empty {', '.join(empty)} names nothing: give one, or leave the option out")
        values: dict[str, object] = {name: os.environ.get(var) for name, var in ENVIRONMENT.items()}
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls.model_validate({key: value for key, value in values.items() if value not in (None, "")})
