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
    progress_interval: float = Field(default=2.0, ge=0)
    alert_emails: str | None = None
    conn_id: str = "mongo_default"
    #: Batches a pass (or a rollback) reads ahead of the one it is writing, at most, in flight together.
    in_flight: int = Field(default=3, ge=1, le=64)

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
        """Settings from `LINKAGE_*` variables; explicit overrides win when not None."""
        values: dict[str, object] = {name: os.environ.get(var) for name, var in ENVIRONMENT.items()}
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls.model_validate({key: value for key, value in values.items() if value not in (None, "")})
