"""The write-ahead journal: one document per batch, written before the batch.

Each journal document records, for every field the batch sets, the value it
held before (the before-image) and the value the run writes; with it the batch's
counts and the last `_id` it covered, so the journal is also the checkpoint a
resumed run continues from. A batch goes `pending` (written, app not yet
touched) -> `applied` (its entries are exactly the writes that landed).

Writes are conditional: a link is set only where the field is still unset, and
rollback restores only where the field still holds what the run wrote, so the
live app's writes in between are never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, Field
from pymongo import DESCENDING, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

UNSET_VALUES: list[Any] = [None, ""]


class FieldWrite(BaseModel):
    """Setting one link field on one document, with its before-image.

    `group` ties writes that must land together (both sides of a user-customer
    link): if one side cannot land, the other is undone.
    """

    coll: str
    oid: Any
    field: str
    new: str
    old: Any = None
    had: bool = False
    group: str

    def forward(self) -> UpdateOne:
        """Set the link only where the field still holds the unset value that was read.

        `{field: null}` matches missing or null, `{field: ""}` the empty string: an
        equality, which servers answer as fast as a bare `_id` update (an `$in`
        costs the embedded server ~1.8x), and any change the app made since fails it.
        """
        unset = "" if self.old == "" else None
        return UpdateOne({"_id": self.oid, self.field: unset}, {"$set": {self.field: self.new}})

    def backward(self) -> UpdateOne:
        restore = {"$set": {self.field: self.old}} if self.had else {"$unset": {self.field: ""}}
        return UpdateOne({"_id": self.oid, self.field: self.new}, restore)


class BatchRecord(BaseModel):
    """A journal document (see module docstring)."""

    id: str = Field(alias="_id")
    run_id: str
    step: str
    phase: str
    partition: int
    seq: int
    last_key: Any = None
    counts: dict[str, int] = Field(default_factory=dict)
    writes: list[FieldWrite] = Field(default_factory=list)
    state: str = "pending"

    model_config = {"populate_by_name": True, "arbitrary_types_allowed": True}

    def document(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class Journal:
    """Journal documents of every run, in the `<prefix>journal` collection."""

    def __init__(self, collection: Collection) -> None:
        self.coll = collection

    def ensure_indexes(self) -> None:
        self.coll.create_index([("run_id", 1), ("step", 1), ("phase", 1), ("partition", 1), ("seq", 1)])

    def last(self, run_id: str, step: str, phase: str, partition: int) -> BatchRecord | None:
        doc = self.coll.find_one(
            {"run_id": run_id, "step": step, "phase": phase, "partition": partition},
            sort=[("seq", DESCENDING)],
        )
        return BatchRecord.model_validate(doc) if doc else None

    def begin(self, record: BatchRecord) -> None:
        """Record the batch before its writes; a resumed run re-records the same batch."""
        try:
            self.coll.insert_one(record.document())
        except DuplicateKeyError:
            self.coll.replace_one({"_id": record.id}, record.document())

    def settle(self, record: BatchRecord, *, rewrite: bool = True) -> None:
        """Mark the batch applied; `rewrite` when its writes or counts changed while applying."""
        record.state = "applied"
        if rewrite:
            self.coll.replace_one({"_id": record.id}, record.document(), upsert=True)
        else:
            self.coll.update_one({"_id": record.id}, {"$set": {"state": record.state}})

    def records(self, run_id: str, *, step: str | None = None, newest_first: bool = False) -> Iterator[BatchRecord]:
        query: dict[str, Any] = {"run_id": run_id}
        if step:
            query["step"] = step
        order = DESCENDING if newest_first else 1
        # a journal document holds a whole batch's writes: fetch a few at a time
        cursor = self.coll.find(query).sort([("step", order), ("phase", order), ("partition", order), ("seq", order)])
        for doc in cursor.batch_size(4):
            yield BatchRecord.model_validate(doc)

    def totals(self, run_id: str, step: str, **where: Any) -> dict[str, int]:
        """Counts summed over the step's batches (optionally one `phase`/`partition`)."""
        totals: dict[str, int] = {}
        for doc in self.coll.find({"run_id": run_id, "step": step, **where}, {"counts": 1}):
            for key, value in doc.get("counts", {}).items():
                totals[key] = totals.get(key, 0) + value
        return totals


def _run_bulk(db: Database, ops_by_coll: dict[str, list[UpdateOne]]) -> int:
    """Unordered bulk writes per collection; per-op failures are left to the caller's read-back."""
    matched = 0
    for coll, ops in ops_by_coll.items():
        if not ops:
            continue
        try:
            matched += db[coll].bulk_write(ops, ordered=False).matched_count
        except BulkWriteError as exc:
            matched += exc.details.get("nMatched", 0)
    return matched


def _group_by_coll(writes: Iterable[FieldWrite], op: str) -> dict[str, list[UpdateOne]]:
    grouped: dict[str, list[UpdateOne]] = {}
    for write in writes:
        grouped.setdefault(write.coll, []).append(getattr(write, op)())
    return grouped


def _landed(db: Database, writes: list[FieldWrite]) -> set[tuple[str, Any, str]]:
    """Which writes the database now holds (field == value written)."""
    found: set[tuple[str, Any, str]] = set()
    by_coll: dict[str, list[FieldWrite]] = {}
    for write in writes:
        by_coll.setdefault(write.coll, []).append(write)
    for coll, group in by_coll.items():
        fields = {w.field for w in group}
        cursor = db[coll].find({"_id": {"$in": [w.oid for w in group]}}, {f: 1 for f in fields})
        current = {doc["_id"]: doc for doc in cursor}
        for write in group:
            if current.get(write.oid, {}).get(write.field) == write.new:
                found.add((write.coll, write.oid, write.field))
    return found


def apply_batch(db: Database, record: BatchRecord) -> list[FieldWrite]:
    """Carry out a pending batch; return the writes that could not land.

    The common case costs one bulk write per collection. Only when fewer writes
    matched than were sent (the app changed a field meanwhile, or a unique index
    refused a link) are the documents read back; a group that landed only in
    part is undone, so a run never leaves a one-sided link of its own making.
    The record keeps exactly the writes that landed.
    """
    if not record.writes:
        return []
    if _run_bulk(db, _group_by_coll(record.writes, "forward")) == len(record.writes):
        return []
    landed = _landed(db, record.writes)
    failed_groups = {w.group for w in record.writes if (w.coll, w.oid, w.field) not in landed}
    partial = [w for w in record.writes if w.group in failed_groups and (w.coll, w.oid, w.field) in landed]
    _run_bulk(db, _group_by_coll(partial, "backward"))
    dropped = [w for w in record.writes if w.group in failed_groups]
    record.writes = [w for w in record.writes if w.group not in failed_groups]
    return dropped


def revert_batch(db: Database, record: BatchRecord) -> int:
    """Undo a batch's writes where the field still holds the run's value."""
    matched = 0
    for coll, ops in _group_by_coll(record.writes, "backward").items():
        matched += db[coll].bulk_write(ops, ordered=False).matched_count
    return matched
