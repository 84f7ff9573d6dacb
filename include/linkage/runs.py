"""The audit record every run leaves in `<prefix>runs` (SPEC §5 "Audit")."""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from datetime import datetime, timezone
from typing import Any

from pymongo import DESCENDING
from pymongo.collection import Collection

from linkage.errors import LinkageError
from linkage.models import FINAL_STATES, MigrationParams, RunState


def new_run_id(kind: str = "migrate") -> str:
    """Sortable by time, unique without coordination: `migrate-20261126T003012Z-1a2b3c`."""
    return f"{kind}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def default_trigger() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}@{socket.gethostname()}"


class RunStore:
    def __init__(self, collection: Collection) -> None:
        self.coll = collection

    def ensure_indexes(self) -> None:
        self.coll.create_index([("kind", 1), ("state", 1), ("created_at", -1)])

    def create(self, kind: str, params: MigrationParams, triggered_by: str, run_id: str | None = None) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        doc = {"_id": run_id or new_run_id(kind), "kind": kind, "triggered_by": triggered_by,
               "params": params.model_dump(mode="json"), "dry_run": params.dry_run,
               "state": RunState.RUNNING.value, "created_at": now, "updated_at": now,
               "steps": {}, "timings": {}, "attempts": 1}
        self.coll.insert_one(doc)
        return doc

    def get(self, run_id: str) -> dict[str, Any]:
        doc = self.coll.find_one({"_id": run_id})
        if doc is None:
            raise LinkageError(f"unknown run id {run_id!r}: no such run in {self.coll.name}")
        return doc

    def newest_unfinished(self, kind: str) -> dict[str, Any] | None:
        """The run `migrate` resumes: newest real run not yet succeeded or rolled back."""
        return self.coll.find_one(
            {"kind": kind, "dry_run": False, "state": {"$nin": [s.value for s in FINAL_STATES]}},
            sort=[("created_at", DESCENDING)])

    def resumed(self, run_id: str) -> None:
        self.coll.update_one({"_id": run_id}, {"$set": {"state": RunState.RUNNING.value, "error": None,
                                                          "updated_at": datetime.now(timezone.utc)},
                                               "$inc": {"attempts": 1}})

    def update(self, run_id: str, **fields: Any) -> None:
        fields["updated_at"] = datetime.now(timezone.utc)
        self.coll.update_one({"_id": run_id}, {"$set": fields})

    def record_timing(self, run_id: str, task: str, seconds: float) -> None:
        self.update(run_id, **{f"timings.{task}": round(seconds, 3)})

    def finish(self, run_id: str, state: RunState, error: str | None = None) -> None:
        self.update(run_id, state=state.value, error=error, finished_at=datetime.now(timezone.utc))

    def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        projection = {"kind": 1, "state": 1, "dry_run": 1, "triggered_by": 1, "created_at": 1, "finished_at": 1,
                      "error": 1, "validation.success": 1}
        return list(self.coll.find({}, projection).sort("created_at", DESCENDING).limit(limit))
