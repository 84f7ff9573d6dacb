"""The audit record every run leaves in `<prefix>runs` (CONTRACT §5 "Audit").

`RunStore` is the only code that reads or writes that collection; `RunRecord`
is a run as the rest of linkage sees it.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymongo import DESCENDING
from pymongo.collection import Collection

from linkage.core.clock import Clock, as_utc, utc_now
from linkage.core.errors import LinkageError
from linkage.core.models import FINAL_STATES, RunKind, RunState, empty_counts
from linkage.core.outcome import ValidationOutcome
from linkage.engine.coverage import shown
from linkage.run.params import MigrationParams
from linkage.run.record_parts import (
    BackupRecord,
    DecisionsRecord,
    DriftRecord,
    FindingsRecord,
    Paging,
    RollbackOutcome,
    StepRecord,
)


def new_run_id(kind: str = RunKind.MIGRATE) -> str:
    """Sortable by time, unique without coordination: `migrate-20261126T003012Z-1a2b3c`."""
    return f"{kind}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def run_slug(run_id: str) -> str:
    """A run id as a file name and URL path segment.

    `linkage_migration:manual__2026-...+00:00` -> `linkage_migration-manual__2026-...-00-00`.
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-") or "run"


def default_trigger() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}@{socket.gethostname()}"


class AirflowRun(BaseModel):
    """The Airflow DAG run a linkage run belongs to."""

    dag_id: str
    dag_run_id: str


Coverages = dict[str, dict[str, float]]

#: The run-record fields keyed by a relation's name, `collection.field`: stored as a list of
#: `{"relation": name, ...}`, since FerretDB refuses a `.` in a field name inside a subdocument
#: (docs/CONTRACT.md §8); `RunStore` writes and reads them, so everyone else sees the mapping.
KEYED_BY_RELATION = ("coverage_before", "coverage_after")


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: [{"relation": name, **value} for name, value in fields[key].items()]
            if key in KEYED_BY_RELATION and fields[key] is not None else value for key, value in fields.items()}


def _read(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored run record with its relation-keyed fields as mappings again (a record stored before they
    were lists, by a server that took the dots, is one already)."""
    for key in KEYED_BY_RELATION:
        if isinstance(doc.get(key), list):
            doc[key] = {item["relation"]: {k: v for k, v in item.items() if k != "relation"} for item in doc[key]}
    return doc


class RunRecord(BaseModel):
    """A run's record, typed (its parts are `linkage.run.record_parts` models)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    kind: RunKind
    triggered_by: str
    params: MigrationParams
    dry_run: bool = False
    state: RunState
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    validation: ValidationOutcome | None = None
    drift: DriftRecord | None = None
    #: A dry run's drift, document by document (a real run's is in the review queue).
    findings: FindingsRecord | None = None
    backup: BackupRecord | None = None
    rollback: RollbackOutcome | None = None
    error: str | None = None
    airflow: AirflowRun | None = None
    coverage_before: Coverages | None = None
    coverage_after: Coverages | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    attempts: int = 1
    created_at: Any = None
    finished_at: Any = None
    #: When the run's journal was pruned (its rollback window over): it can no longer be rolled back.
    journal_pruned_at: Any = None
    housekeeping: dict[str, Any] | None = None
    paging: Paging | None = None
    #: People's decisions this run carried out (a decisions run, a reconcile), and its approval.
    decisions: DecisionsRecord | None = None

    def reversible_until(self, days: int) -> datetime | None:
        """When the run's rollback window ends (None: a dry run, which has nothing to roll back)."""
        created = as_utc(self.created_at)
        return None if self.dry_run or created is None else created + timedelta(days=days)

    def is_reversible(self, days: int, now: datetime) -> bool:
        """Whether the run can still be rolled back: within its window, its journal kept, not undone already."""
        until = self.reversible_until(days)
        return until is not None and now < until and self.journal_pruned_at is None and self.state in (
            RunState.SUCCEEDED, RunState.FAILED, RunState.ROLLBACK_FAILED)

    def step(self, step: str) -> StepRecord:
        return self.steps.get(step) or StepRecord()

    def counts(self) -> dict[str, dict[str, int]]:
        return {step: {**empty_counts(), **data.counts} for step, data in self.steps.items()}

    @property
    def drift_total(self) -> int:
        return self.drift.total if self.drift else 0

    def summary(self) -> str:
        """One line for people: what the run did, or why it was undone (the Airflow run note, status)."""
        drift_text = f"drift found: {self.drift_total} items" if self.drift_total else "no drift"
        if self.drift_total and self.paging and not self.paging.page:
            drift_text = f"drift unchanged: {self.drift_total} open"
        if self.state == RunState.ROLLED_BACK:
            why = self.validation.failure_reason() if self.validation and self.validation.failed else self.error
            return f"rolled back: {why}"
        if self.state == RunState.ROLLBACK_FAILED:
            return f"ROLLBACK FAILED: {self.error}"
        if self.state == RunState.FAILED:
            return f"failed: {self.error}"
        if self.state == RunState.REJECTED:
            return f"{self.error}: nothing written"
        linked = ", ".join(f"{step} {counts['linked']:,}" for step, counts in self.counts().items())
        parts = [f"dry run: would link {linked}" if self.dry_run else f"linked {linked}"]
        if self.decisions and (decided := self.decisions.summary()):
            parts.append(decided)
        if self.coverage_before and self.coverage_after and not self.dry_run:
            parts.append("coverage " + ", ".join(
                f"{name} {shown(before)} -> {shown(self.coverage_after[name])}"
                for name, before in self.coverage_before.items() if name in self.coverage_after))
        parts.append(drift_text)
        if self.state == RunState.RUNNING:
            parts.insert(0, "running")
        return " · ".join(parts)

    def report(self) -> RunReport:
        return RunReport(run_id=self.id, kind=self.kind, state=self.state, dry_run=self.dry_run, steps=self.counts(),
                         validation=self.validation, drift=self.drift, backup=self.backup.path if self.backup else None,
                         rollback=self.rollback, error=self.error, coverage_before=self.coverage_before,
                         coverage_after=self.coverage_after, decisions=self.decisions)


class RunReport(BaseModel):
    """A run's outcome as the CLI prints it and `--json` carries it (CONTRACT §7)."""

    run_id: str
    kind: RunKind
    state: RunState
    dry_run: bool
    steps: dict[str, dict[str, int]]
    validation: ValidationOutcome | None
    drift: DriftRecord | None
    backup: str | None
    rollback: RollbackOutcome | None
    error: str | None
    coverage_before: Coverages | None
    coverage_after: Coverages | None
    decisions: DecisionsRecord | None = None

    def as_json(self) -> dict[str, Any]:
        """As `--json` prints it: the validation with the names of its failed expectations."""
        return {**self.model_dump(mode="json"),
                "validation": self.validation.as_record() if self.validation else None,
                "rollback": self.rollback.model_dump(exclude_none=True) if self.rollback else None}


class RunStore:
    def __init__(self, collection: Collection, clock: Clock = utc_now) -> None:
        self.coll, self.clock = collection, clock

    def ensure_indexes(self) -> None:
        self.coll.create_index([("kind", 1), ("state", 1), ("created_at", -1)])
        self.coll.create_index([("created_at", -1)])

    def create(self, kind: RunKind, params: MigrationParams, triggered_by: str, run_id: str | None = None,
               airflow: AirflowRun | None = None) -> dict[str, Any]:
        now = self.clock()
        doc = {"_id": run_id or new_run_id(kind), "kind": kind.value, "triggered_by": triggered_by,
               "params": params.model_dump(mode="json"), "dry_run": params.dry_run,
               "state": RunState.RUNNING.value, "created_at": now, "updated_at": now,
               "steps": {}, "timings": {}, "attempts": 1,
               "airflow": airflow.model_dump() if airflow else None}
        self.coll.insert_one(doc)
        return doc

    def find(self, run_id: str) -> dict[str, Any] | None:
        doc = self.coll.find_one({"_id": run_id})
        return _read(doc) if doc else None

    def get(self, run_id: str) -> dict[str, Any]:
        doc = self.find(run_id)
        if doc is None:
            raise LinkageError(f"unknown run id {run_id!r}: no such run in {self.coll.name}")
        return doc

    def record(self, run_id: str) -> RunRecord:
        return RunRecord.model_validate(self.get(run_id))

    def resolve(self, given: str) -> str:
        """A linkage run id from either id: the linkage run's own, or the Airflow DAG run's."""
        given = given.strip()
        if self.find(given):
            return given
        found = [doc["_id"] for doc in self.coll.find({"airflow.dag_run_id": given}, {"_id": 1})]
        if len(found) == 1:
            return str(found[0])
        if found:
            raise LinkageError(f"run id {given!r} names DAG runs of several DAGs ({', '.join(map(str, found))}): "
                               "give the linkage run id")
        raise LinkageError(f"unknown run id {given!r}: no such run in {self.coll.name} (give a linkage run id, "
                           "e.g. linkage_migration:manual__..., or the Airflow DAG run id it belongs to)")

    def newest_unfinished(self, kind: RunKind) -> dict[str, Any] | None:
        """The run `migrate` resumes: newest real run not yet succeeded or rolled back."""
        return self.coll.find_one(
            {"kind": kind.value, "dry_run": False, "state": {"$nin": [s.value for s in FINAL_STATES]}},
            sort=[("created_at", DESCENDING)])

    def resumed(self, run_id: str) -> None:
        self.coll.update_one({"_id": run_id}, {"$set": {"state": RunState.RUNNING.value, "error": None,
                                                          "updated_at": self.clock()},
                                               "$inc": {"attempts": 1}})

    def update(self, run_id: str, **fields: Any) -> None:
        fields["updated_at"] = self.clock()
        self.coll.update_one({"_id": run_id}, {"$set": _stored(fields)})

    def record_timing(self, run_id: str, task: str, seconds: float) -> None:
        self.update(run_id, **{f"timings.{task}": round(seconds, 3)})

    def finish(self, run_id: str, state: RunState, error: str | None = None) -> None:
        self.update(run_id, state=state.value, error=error, finished_at=self.clock())

    def claim(self, run_id: str, key: str, owner: str) -> None:
        """Make `owner` the one worker of a piece of the run (the newest claim wins)."""
        self.coll.update_one({"_id": run_id}, {"$set": {f"claims.{key}": owner}})

    def claimant(self, run_id: str, key: str) -> str | None:
        doc = self.coll.find_one({"_id": run_id}, {"claims": 1}) or {}
        return (doc.get("claims") or {}).get(key)

    def fail_if_running(self, run_id: str, reason: str) -> bool:
        """Mark a run that is still `running` as `failed` (a task gave up); True if it was."""
        done = self.coll.update_one({"_id": run_id, "state": RunState.RUNNING.value},
                                    {"$set": {"state": RunState.FAILED.value, "error": reason[:500],
                                              "updated_at": self.clock()}})
        return done.modified_count == 1

    def has_full_backup_since(self, since: datetime) -> bool:
        """Whether a run created since then has a verified full backup."""
        return self.coll.find_one({"created_at": {"$gte": since}, "backup.verified": True,
                                   "backup.scope": "full"}, {"_id": 1}) is not None

    def record_step(self, run_id: str, step: str, counts: dict[str, int], seconds: float | None = None) -> None:
        fields: dict[str, Any] = {f"steps.{step}.counts": counts}
        if seconds is not None:
            fields[f"steps.{step}.seconds"] = round(seconds, 3)
        self.update(run_id, **fields)

    def recent(self, limit: int = 10, skip: int = 0) -> list[dict[str, Any]]:
        # top-level fields only: some servers (the embedded one) return a dotted projection as a flat key
        projection = {"kind": 1, "state": 1, "dry_run": 1, "triggered_by": 1, "created_at": 1, "finished_at": 1,
                      "error": 1, "validation": 1, "drift": 1, "steps": 1, "airflow": 1, "backup": 1,
                      "rollback": 1, "coverage_after": 1, "timings": 1}
        return [_read(doc) for doc in self.coll.find({}, projection).sort("created_at", DESCENDING).skip(skip)
                .limit(limit)]
