"""Where linkage connects and how it behaves, from arguments or `LINKAGE_*`."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator

DEFAULT_URI = "mongodb://127.0.0.1:27017/"


class Settings(BaseModel):
    """Connection and bookkeeping settings shared by every command and task."""

    mongo_uri: str = DEFAULT_URI
    db: str = "app"
    timezone: str = "Asia/Kolkata"
    prefix: str = "linkage_"
    backup_dir: Path = Path("backups")
    backup_gzip: bool = True
    docs_dir: Path = Path("gx_docs")
    lock_ttl_seconds: float = Field(default=120.0, gt=1)
    server_timeout_ms: int = Field(default=5000, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def collection(self, name: str) -> str:
        """Name of a bookkeeping collection, e.g. `runs` -> `linkage_runs`."""
        return f"{self.prefix}{name}"

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Settings from `LINKAGE_*` variables; explicit overrides win when not None."""
        env = {
            "mongo_uri": os.environ.get("LINKAGE_MONGO_URI"),
            "db": os.environ.get("LINKAGE_DB"),
            "timezone": os.environ.get("LINKAGE_TIMEZONE"),
            "prefix": os.environ.get("LINKAGE_PREFIX"),
            "backup_dir": os.environ.get("LINKAGE_BACKUP_DIR"),
            "docs_dir": os.environ.get("LINKAGE_DOCS_DIR"),
            "lock_ttl_seconds": os.environ.get("LINKAGE_LOCK_TTL_SECONDS"),
            "server_timeout_ms": os.environ.get("LINKAGE_SERVER_TIMEOUT_MS"),
        }
        env.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**{key: value for key, value in env.items() if value is not None})
