"""What people decided about review items (`linkage_decisions`): an append-only history, the newest per item counts.

A decision is one of: link the item's document to a candidate or to another existing id
(`link`, with `target`), leave it unlinked (`none`), or clear a dangling reference (`clear`).
Each records who made it, when, through what (`via`: the view, its API, a CSV import, the CLI),
an optional note, and the state of the document it was made on (`DocState`): a digest of each
field the rules matched it on and the value of its link field. That state is what lets a later
step tell that the document changed since (a stale decision), and what a "none" holds on.

Decisions are never replaced or deleted. Recording a newer one for an item marks the older
pending one `superseded`, so at most one decision per item is pending. Applying them is another
step's work (the `linkage_apply_decisions` DAG and `linkage apply-decisions`); it uses this
interface:

- `DecisionStore.pending(steps)`: the pending decisions (or, with `status`, the approved ones), newest
  per item, oldest first, each a `DecisionRecord` with the item, the document (`collection`,
  `document_oid`), what to write (`kind`, `target`) and the `state` it was made on;
- `DecisionStore.approve(ids, by, run_id)`: `pending` -> `approved`, naming the approver (a person other
  than the decider: `linkage.stages.approval` checks that, `linkage.core.people` says who is who); only approved
  decisions are ever written;
- `StateReader.stale(decisions)`: for each decision whose document changed since it was made
  (or is gone), why, in words (`{decision id: "delivery_date changed since the decision"}`);
- `DecisionStore.mark(ids, status, run_id=..., reason=...)`: `pending` -> `rejected`; `approved` ->
  `applied`, `stale`, `rolled_back` (its run was undone before it concluded); `applied` -> `rolled_back`;
  `pending` or `approved` -> `superseded`.
  Any other transition is refused (not counted), so
  marking twice changes nothing. The item side (closing, reopening with a reason) is
  `ReviewQueue.decided` / `ReviewQueue.reopen`.

Phones and emails never leave as themselves: a key field is kept as a digest salted with the
decision's id, and the state is never shown by the view, its API or an export.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from bson import json_util
from pydantic import BaseModel, ConfigDict, Field
from pymongo import DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from linkage.core.keys import id_key

#: How much of a key field's salted SHA-256 is kept (enough to tell a change, too little to be the value).
DIGEST_CHARS = 16


class DecisionKind(StrEnum):
    LINK = "link"
    NONE = "none"
    CLEAR = "clear"


class DecisionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    APPLIED = "applied"
    STALE = "stale"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"
    SUPERSEDED = "superseded"


#: The statuses a decision may move to, by the status it has.
TRANSITIONS: dict[DecisionStatus, frozenset[DecisionStatus]] = {
    DecisionStatus.PENDING: frozenset({DecisionStatus.APPROVED, DecisionStatus.REJECTED, DecisionStatus.SUPERSEDED}),
    DecisionStatus.APPROVED: frozenset({DecisionStatus.APPLIED, DecisionStatus.STALE, DecisionStatus.ROLLED_BACK,
                                        DecisionStatus.SUPERSEDED}),
    DecisionStatus.APPLIED: frozenset({DecisionStatus.ROLLED_BACK}),
}


def new_decision_id(at: datetime) -> str:
    """Sortable by time, unique without coordination: `d-20260502T101500123456Z-1a2b3c`."""
    return f"d-{at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"


def made_before(at: datetime) -> dict[str, Any]:
    """The decisions made before `at`, by id (what a run that started then carries out: a decision made
    while it runs, or while its approval waits, waits for the next run)."""
    return {"_id": {"$lt": f"d-{at.astimezone(timezone.utc):%Y%m%dT%H%M%S%fZ}"}}


class StateFields(BaseModel):
    """What a document's state is made of: the fields the rules matched it on, and its link fields."""

    model_config = ConfigDict(frozen=True)

    keys: tuple[str, ...]
    links: tuple[str, ...]


class DocState(BaseModel):
    """A document as a decision found it: a salted digest per key field, the link fields' values (ids)."""

    keys: dict[str, str]
    links: dict[str, Any]

    def changed(self, now: DocState) -> list[str]:
        """The fields that differ in `now` (computed with the same salt)."""
        keys = [name for name, digest in self.keys.items() if now.keys.get(name) != digest]
        return keys + [name for name, value in self.links.items() if now.links.get(name) != value]


def _digest(salt: str, field: str, doc: Mapping[str, Any]) -> str:
    value = json_util.dumps({"v": doc[field]}, sort_keys=True) if field in doc else "<missing>"
    return hashlib.sha256(f"{salt}\x00{field}\x00{value}".encode()).hexdigest()[:DIGEST_CHARS]


def document_state(doc: Mapping[str, Any], fields: StateFields, salt: str) -> DocState:
    return DocState(keys={field: _digest(salt, field, doc) for field in fields.keys},
                    links={field: doc.get(field) for field in fields.links})


class DecisionRecord(BaseModel):
    """One decision as stored: the item and document it is about, what it says, who made it, and its status."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    item_id: str
    step: str
    collection: str
    document_oid: Any
    document_id: str | None = None
    category: str
    kind: DecisionKind
    target: str | None = None
    #: Whether `target` was among the item's candidates when the decision was made.
    candidate: bool = False
    by: str
    via: str
    at: Any
    note: str | None = None
    state: DocState
    #: The request or file the decision came in with: an import is recorded whole.
    batch: str | None = None
    status: DecisionStatus = DecisionStatus.PENDING
    status_at: Any = None
    status_run: str | None = None
    status_reason: str | None = None
    #: Who let it be written (a person other than `by`), when, in which run.
    approved_by: str | None = None
    approved_at: Any = None
    approved_run: str | None = None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="python", by_alias=True)

    def stale_reason(self, now: DocState | None) -> str | None:
        """Why the decision no longer fits its document, or None if the document is as it was."""
        if now is None:
            return "the document no longer exists"
        changed = self.state.changed(now)
        return f"{', '.join(changed)} changed since the decision" if changed else None


class StateReader:
    """Reads documents' current state, for the collections the registered steps' review items are about."""

    def __init__(self, db: Database, fields: Mapping[str, StateFields]) -> None:
        self.db, self.fields = db, dict(fields)

    def documents(self, collection: str, oids: Iterable[Any]) -> dict[str, dict[str, Any]]:
        """The documents by typed id (`journal_codec.id_key`), with what their state and the rules read."""
        fields = self.fields.get(collection)
        wanted = list({id_key(oid): oid for oid in oids}.values())
        if fields is None or not wanted:
            return {}
        projection = dict.fromkeys(("id", *fields.keys, *fields.links), 1)
        return {id_key(d["_id"]): d for d in self.db[collection].find({"_id": {"$in": wanted}}, projection)}

    def state(self, collection: str, doc: Mapping[str, Any], salt: str) -> DocState:
        return document_state(doc, self.fields[collection], salt)

    def stale(self, decisions: Iterable[DecisionRecord]) -> dict[str, str]:
        """For each decision whose document changed since it was made (or is gone): why."""
        by_collection: dict[str, list[DecisionRecord]] = {}
        for decision in decisions:
            by_collection.setdefault(decision.collection, []).append(decision)
        reasons = {}
        for collection, group in by_collection.items():
            docs = self.documents(collection, (d.document_oid for d in group))
            for decision in group:
                if (reason := self.stale_reason(decision, docs.get(id_key(decision.document_oid)))) is not None:
                    reasons[decision.id] = reason
        return reasons

    def stale_reason(self, decision: DecisionRecord, doc: Mapping[str, Any] | None) -> str | None:
        """Why `decision` no longer fits `doc` as it is now (None: it still does)."""
        return decision.stale_reason(self.state(decision.collection, doc, decision.id) if doc is not None else None)


class DecisionStore:
    """`linkage_decisions`: appended to, never rewritten, but for each decision's status."""

    def __init__(self, collection: Collection) -> None:
        self.coll = collection

    def ensure_indexes(self) -> None:
        self.coll.create_index([("item_id", 1)])
        self.coll.create_index([("status", 1)])

    def add(self, decisions: list[DecisionRecord]) -> None:
        """Append decisions (one per item); the pending ones they replace become `superseded`."""
        if not decisions:
            return
        items = [d.item_id for d in decisions]
        waiting = [DecisionStatus.PENDING.value, DecisionStatus.APPROVED.value]
        older = [d["_id"] for d in self.coll.find({"item_id": {"$in": items}, "status": {"$in": waiting}},
                                                  {"_id": 1})]
        self.coll.insert_many([d.stored() for d in decisions], ordered=True)
        self.mark(older, DecisionStatus.SUPERSEDED, reason="a newer decision on the same item")

    def pending(self, steps: Iterable[str] | None = None, before: datetime | None = None,
                status: DecisionStatus = DecisionStatus.PENDING) -> list[DecisionRecord]:
        """The pending (or `status`) decisions (made `before`, when given), the newest per item, oldest first."""
        query: dict[str, Any] = {"status": status.value, **(made_before(before) if before else {})}
        if steps is not None:
            query["step"] = {"$in": list(steps)}
        newest: dict[str, DecisionRecord] = {}
        for doc in self.coll.find(query).sort("_id", 1):
            decision = DecisionRecord.model_validate(doc)
            newest[decision.item_id] = decision
        return sorted(newest.values(), key=lambda d: d.id)

    def mark(self, ids: Iterable[str], status: DecisionStatus, *, run_id: str | None = None,
             reason: str | None = None) -> int:
        """Move decisions to `status` where the transition is allowed; how many moved."""
        wanted = list(ids)
        allowed = [source.value for source, targets in TRANSITIONS.items() if status in targets]
        if not wanted or not allowed:
            return 0
        done = self.coll.update_many({"_id": {"$in": wanted}, "status": {"$in": allowed}},
                                     {"$set": {"status": status.value, "status_at": datetime.now(timezone.utc),
                                               "status_run": run_id, "status_reason": reason}})
        return done.modified_count

    def approve(self, ids: Iterable[str], *, by: str, run_id: str) -> int:
        """Pending decisions approved by `by` in run `run_id` (the caller checked `by` decided none of them)."""
        wanted, now = list(ids), datetime.now(timezone.utc)
        if not wanted:
            return 0
        done = self.coll.update_many({"_id": {"$in": wanted}, "status": DecisionStatus.PENDING.value},
                                     {"$set": {"status": DecisionStatus.APPROVED.value, "status_at": now,
                                               "status_run": run_id, "status_reason": None, "approved_by": by,
                                               "approved_at": now, "approved_run": run_id}})
        return done.modified_count

    def waiting(self, ids: Iterable[str], reason: str) -> None:
        """Say why pending decisions are still pending (their decider cannot approve them), status unchanged."""
        self.coll.update_many({"_id": {"$in": list(ids)}, "status": DecisionStatus.PENDING.value},
                              {"$set": {"status_reason": reason}})

    def by_ids(self, ids: Iterable[str]) -> list[DecisionRecord]:
        """These decisions, in id order (whatever their status now)."""
        return [DecisionRecord.model_validate(d) for d in self.coll.find({"_id": {"$in": list(ids)}}).sort("_id", 1)]

    def history(self, item_id: str) -> list[DecisionRecord]:
        """Every decision on an item, newest first."""
        return [DecisionRecord.model_validate(d) for d in self.coll.find({"item_id": item_id}).sort("_id", DESCENDING)]

    def recent(self, status: DecisionStatus | None = None, limit: int = 50) -> list[DecisionRecord]:
        query = {"status": status.value} if status else {}
        return [DecisionRecord.model_validate(d) for d in self.coll.find(query).sort("_id", DESCENDING).limit(limit)]
