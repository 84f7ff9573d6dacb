"""The write-ahead journal: one document per batch, written before the batch.

Each journal document records, for every field the batch sets, the value it
held before (the before-image) and the value the run writes (stored compactly:
`journal_codec`); with it the batch's counts, the partition's running totals and
the last key it covered, so the journal is also the checkpoint a resumed run
continues from. A run's passes only plan: a batch is journaled `planned` (the
app untouched); the run's apply stage then takes each to `pending` (its writes
under way) and `applied` (its entries are exactly the writes that landed). A
dry run's batches are `dry` and carry no writes. The conditional writes
themselves are `linkage.engine.conditional`.

Writes are conditional: a link is set only where the field is still unset, and
rollback restores only where the field still holds what the run wrote, so the
live app's writes in between are never overwritten. The journal also answers
"did this run write that value there?", which is how validation tells what a
run broke from what the data brought with it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from linkage.core.app_schema import UNSET_VALUES
from linkage.core.errors import JournalLostError
from linkage.mongo.resumable import resumable
from linkage.store import journal_codec

__all__ = ["UNSET_VALUES", "WRITTEN_STATES", "BatchRecord", "BatchState", "FieldWrite", "Journal", "LinkValue",
           "batch_id"]


class BatchState(StrEnum):
    """Where a batch is: planned (journaled, the app untouched), pending (its writes under way), applied (its
    writes are exactly those that landed), or dry (a dry run's: counts only)."""

    PLANNED = "planned"
    PENDING = "pending"
    APPLIED = "applied"
    DRY = "dry"


#: The batches whose writes may have reached the app (what a rollback walks).
WRITTEN_STATES = (BatchState.PENDING, BatchState.APPLIED)


def batch_id(run_id: str, step: str, phase: str, partition: int, seq: int) -> str:
    """The journal id of one batch: unique per run, step, phase, partition and sequence."""
    return f"{run_id}:{step}:{phase}:{partition}:{seq:07d}"


class LinkValue(NamedTuple):
    """A link field's current value on one document."""

    coll: str
    oid: Any
    field: str
    value: Any


class FieldWrite(BaseModel):
    """Setting one link field on one document (or, with `new` None, unsetting it), with its before-image.

    `group` ties writes that must land together (both sides of a user-customer
    link, a person's decision): if one side cannot land, the other is undone.
    """

    coll: str
    oid: Any
    field: str
    #: The value written; None clears the field (a person's decision on a dangling link).
    new: str | None
    old: Any = None
    had: bool = False
    group: str

    def _holding(self, value: Any, present: bool) -> dict[str, Any]:
        """The filter "the field holds exactly this": `{field: null}` matches missing or null, a value itself."""
        return {"_id": self.oid, self.field: value if present and value is not None else None}

    def forward(self) -> UpdateOne:
        """Write only where the field still holds the before-image that was read.

        For a backfill that is an unset value: `{field: null}` matches missing or
        null, `{field: ""}` the empty string, an equality, which servers answer as
        fast as a bare `_id` update (an `$in` costs the embedded server ~1.8x);
        any change the app made since fails it.
        """
        change = {"$set": {self.field: self.new}} if self.new is not None else {"$unset": {self.field: ""}}
        return UpdateOne(self._holding(self.old, self.had), change)

    def backward(self) -> UpdateOne:
        restore = {"$set": {self.field: self.old}} if self.had else {"$unset": {self.field: ""}}
        return UpdateOne(self._holding(self.new, self.new is not None), restore)

    def restored_in(self, doc: dict[str, Any] | None) -> bool:
        """Whether `doc` holds this write's before-image again (a rollback already undid it)."""
        if doc is None:
            return False
        return doc.get(self.field) == self.old and (self.field in doc) == self.had


class BatchRecord(BaseModel):
    """A journal document (see module docstring)."""

    id: str = Field(alias="_id")
    run_id: str
    step: str
    phase: str
    partition: int
    seq: int
    at: float = Field(default_factory=time.time)
    last_key: Any = None
    counts: dict[str, int] = Field(default_factory=dict)
    #: The partition's counts through this batch: a resumed pass starts from them, without re-reading.
    totals: dict[str, int] = Field(default_factory=dict)
    writes: list[FieldWrite] = Field(default_factory=list)
    #: The decisions a decisions pass does not carry out, by id, and why (the document changed since).
    declined: dict[str, str] = Field(default_factory=dict)
    #: Every decision a decisions pass walked in this batch (written, declined or writing nothing): what the
    #: run carried out, settled and undone by id, never by a status that may have moved since.
    carried: list[str] = Field(default_factory=list)
    state: BatchState = BatchState.PLANNED
    #: Who wrote the batch to the app: the task (its try) and the host it ran on, or the CLI's process.
    applied_by: str | None = None

    model_config = {"populate_by_name": True, "arbitrary_types_allowed": True}

    def document(self) -> dict[str, Any]:
        """As stored: the writes packed by before-state, their documents' keys in `touched` (indexed)."""
        packed, touched = journal_codec.pack([w.model_dump() for w in self.writes])
        return {**self.model_dump(by_alias=True, exclude={"writes"}), "writes": packed, "touched": touched}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> BatchRecord:
        return cls.model_validate({**doc, "writes": journal_codec.unpack(doc.get("writes", []),
                                                                         doc.get("touched", []))})


class Journal:
    """Journal documents of every run, in the `<prefix>journal` collection."""

    def __init__(self, collection: Collection) -> None:
        self.coll = collection

    def ensure_indexes(self) -> None:
        self.coll.create_index([("run_id", 1), ("step", 1), ("phase", 1), ("partition", 1), ("seq", 1)])
        self.coll.create_index([("run_id", 1), ("at", 1)])
        self.coll.create_index([("run_id", 1), ("touched", 1)])

    def last(self, run_id: str, step: str, phase: str, partition: int) -> BatchRecord | None:
        doc = self.coll.find_one(
            {"run_id": run_id, "step": step, "phase": phase, "partition": partition},
            sort=[("seq", DESCENDING)],
        )
        return BatchRecord.from_document(doc) if doc else None

    def begin(self, record: BatchRecord) -> None:
        """Record the batch before its writes; a resumed run re-records the same batch."""
        try:
            self.coll.insert_one(record.document())
        except DuplicateKeyError:
            self.coll.replace_one({"_id": record.id}, record.document())

    def mark(self, record: BatchRecord, state: BatchState) -> None:
        """Move the batch to `state`; a journal document that is not there (lost in a failover by a primary that
        had acknowledged it, before the bookkeeping was majority-written) stops the run: its writes would be
        ones no journal describes."""
        record.state = state
        change = {"state": state.value, **({"applied_by": record.applied_by} if record.applied_by else {})}
        if self.coll.update_one({"_id": record.id}, {"$set": change}).matched_count != 1:
            raise JournalLostError(f"journal document {record.id} is missing: the batch is not written; resume the "
                                   "run to plan it again")

    def settle(self, record: BatchRecord, *, rewrite: bool = True) -> None:
        """Mark the batch applied; `rewrite` when its writes or counts changed while applying."""
        if rewrite:
            record.state = BatchState.APPLIED
            self.coll.replace_one({"_id": record.id}, record.document(), upsert=True)
        else:
            self.mark(record, BatchState.APPLIED)

    def records(self, run_id: str, *, newest_first: bool = False, states: Iterable[BatchState] | None = None,
                step: str | None = None, phase: str | None = None,
                partition: int | None = None) -> Iterator[BatchRecord]:
        """The run's batches (in these states, of this step, phase, partition) in the order they were journaled,
        or the reverse.

        A read the server ends (a rollback can outlive an idle cursor) goes on from the `at` of the
        last batch handed out (`linkage.mongo.resumable`), less the batches at that `at` already handed
        out: `at` may tie, and an index with `_id` in it is one the embedded server cannot keep.
        """
        query: dict[str, Any] = {"run_id": run_id}
        if states is not None:
            query["state"] = {"$in": [state.value for state in states]}
        narrowed = {"step": step, "phase": phase, "partition": partition}
        query.update({key: value for key, value in narrowed.items() if value is not None})
        order, from_there = (DESCENDING, "$lte") if newest_first else (ASCENDING, "$gte")
        tied: tuple[Any, set[str]] = (None, set())  # the last `at` handed out, and the batches handed out at it

        def read_after(at: float | None) -> Iterator[dict[str, Any]]:
            bound = {} if at is None else {"at": {from_there: at}}
            # a journal document holds a whole batch's writes: few a getMore
            docs = self.coll.find({**query, **bound}).sort("at", order).batch_size(16)
            return (doc for doc in docs if not (doc["at"] == at and doc["_id"] in tied[1]))

        def one_by_one(docs: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
            return ([d] for d in docs)

        for [doc] in resumable(read_after, one_by_one, lambda one: one[0]["at"]):
            if doc["at"] != tied[0]:
                tied = (doc["at"], set())
            tied[1].add(doc["_id"])
            yield BatchRecord.from_document(doc)

    def step_counts(self, run_id: str, step: str) -> Counter[str]:
        """A step's counts by category: the sum of its batches' own counts (each adjusted when it was applied)."""
        counts: Counter[str] = Counter()
        for doc in self.coll.find({"run_id": run_id, "step": step}, {"counts": 1}).batch_size(1000):
            counts.update(doc.get("counts") or {})
        return counts

    def links_written(self, run_id: str) -> Counter[str]:
        """How many link values the run wrote (and that landed), per `collection.field`, less those it cleared."""
        written: Counter[str] = Counter()
        for doc in self.coll.find({"run_id": run_id}, {"writes": 1}).batch_size(64):
            written.update(journal_codec.written_per_field(doc.get("writes", [])))  # a clear counts -1
        return written

    def written_by(self, run_id: str, values: list[LinkValue]) -> set[LinkValue]:
        """Which of these link values this run wrote and that are still the run's.

        One index-backed look-up (`touched`) for the whole list; only the batches
        that touched one of the documents are read.
        """
        if not values:
            return set()
        wanted = {(v.coll, v.oid, v.field, v.value): v for v in values if isinstance(v.value, str)}
        keys = list({journal_codec.id_key(v.oid) for v in values})
        found: set[LinkValue] = set()
        query = {"run_id": run_id, "touched": {"$in": keys}}
        for doc in self.coll.find(query, {"writes": 1, "touched": 1}).batch_size(16):
            for write in journal_codec.unpack(doc.get("writes", []), doc.get("touched", [])):
                key = (write["coll"], write["oid"], write["field"], write["new"])
                if key in wanted:
                    found.add(wanted[key])
        return found
