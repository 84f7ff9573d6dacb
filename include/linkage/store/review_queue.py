"""Documents the pipeline left alone, for a person to decide (`linkage_review`).

One item per (step, document), upserted, so re-runs refresh rather than pile up. An item says
what a person needs to decide: its category and reason (the field at fault, never a value), its
candidates with the attributes they are told apart by, who holds the other side, the id a
dangling link names. It is `open` until a later run finds its document linked (`resolved`) or a
person decides it (`decided`: `linkage.store.decisions` keeps the history, the item the newest).

A decided item stays closed: runs that find its document again leave it as it is, and validation
does not count it as drift, for as long as the fields the rules matched the document on are as
they were when the decision was made. Once one changes, the item reopens saying which. Items
carry ids, categories and reasons, never raw phones or emails. Only real runs write here: a dry
run reports what it found in its own run record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel
from pymongo import ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from linkage.core.clock import Clock, utc_now
from linkage.core.keys import id_key
from linkage.core.models import COUNT_KEYS, REVIEW_CATEGORIES, Ruling
from linkage.core.settings import DEFAULT_WRITE_CHUNK
from linkage.mongo.concerns import refuse_unconfirmed
from linkage.store.decisions import DecisionRecord, StateReader
from linkage.store.review_key import FIELD, Bounds, Where, counted, prefix_bounds, queue_key, walk, within

OPEN, DECIDED, RESOLVED = "open", "decided", "resolved"
STATUSES = (OPEN, DECIDED, RESOLVED)
#: The review categories in report order.
CATEGORIES = [key for key in COUNT_KEYS if key in REVIEW_CATEGORIES]
DUPLICATE_KEY = 11000


class ShownDecision(BaseModel):
    """A decision as people see it on its item: what, by whom, when, the note."""

    kind: str
    target: str | None = None
    by: str
    at: Any = None
    note: str | None = None


class ItemDecision(ShownDecision):
    """The decision an item is closed by, as the item carries it (the whole history is `linkage_decisions`)."""

    id: str
    #: The digests of the document's key fields when it was decided (never shown).
    keys: dict[str, str]

    @classmethod
    def of(cls, decision: DecisionRecord) -> ItemDecision:
        return cls(id=decision.id, kind=decision.kind.value, target=decision.target, by=decision.by,
                   at=decision.at, note=decision.note, keys=decision.state.keys)


class Keyed(Protocol):
    """What names a review item: the relation (step) a finding is about, and its document's `_id`."""

    @property
    def step(self) -> str | None: ...

    @property
    def oid(self) -> Any: ...


Found = TypeVar("Found", bound=Keyed)


class Change(NamedTuple):
    """A decided item found again: its decision, and the key fields of its document changed since (none: it holds)."""

    decision: ItemDecision
    fields: list[str]

    def why(self) -> str:
        return f"{', '.join(self.fields)} changed since {self.decision.by} decided {self.decision.kind}"


def item_document(run_id: str, step: str, collection: str, d: Ruling, found_by: str,
                  now: datetime) -> dict[str, Any]:
    """A review item as stored: the document, what the rules found, what a person needs to decide it."""
    item_id = ReviewQueue.item_id(step, d.oid)
    return {"_id": item_id, "step": step, "collection": d.collection or collection, "document_oid": d.oid,
            "document_id": d.app_id if isinstance(d.app_id, str) else None, "category": d.category.value,
            "reason": d.reason, "field": d.field, "candidates": [c.model_dump() for c in d.candidates],
            "more_candidates": d.more_candidates, "holders": [h.model_dump() for h in d.holders],
            "missing": d.missing, "status": OPEN, FIELD: queue_key(OPEN, step, d.category.value, item_id),
            "found_by": found_by, "run_id": run_id, "updated_at": now}


def _one(coll: Collection, op: Any) -> int:
    try:
        return coll.bulk_write([op], ordered=False).modified_count
    except (BulkWriteError, DuplicateKeyError) as exc:
        if isinstance(exc, BulkWriteError):
            refuse_unconfirmed(exc)
        errors = exc.details.get("writeErrors", []) if isinstance(exc, BulkWriteError) else [{"code": exc.code}]
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return 0


def _written(coll: Collection, ops: list[Any], chunk: int) -> int:
    """Write unordered in commands of at most `chunk` statements (`linkage.mongo.bulk`: FerretDB hangs on long
    ones); how many items changed. An upsert refused because a person decided the item meanwhile (its key
    is taken) is left out; a command failed whole without naming its statement (FerretDB, on that refusal)
    is sent again a statement at a time."""
    modified = 0
    for start in range(0, len(ops), chunk):
        part = ops[start:start + chunk]
        try:
            modified += coll.bulk_write(part, ordered=False).modified_count
        except BulkWriteError as exc:
            refuse_unconfirmed(exc)
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
            modified += int(exc.details.get("nModified", 0))
        except OperationFailure:
            if len(part) == 1:
                raise
            modified += sum(_one(coll, op) for op in part)
    return modified


def resolution(now: datetime) -> dict[str, Any]:
    """When an item was resolved, as a number (what housekeeping compares on every server) and as a date (what
    a TTL index expires on, where the server has them)."""
    return {"resolved_at": now.timestamp(), "resolved_on": now}


class ReviewQueue:
    def __init__(self, collection: Collection, states: StateReader | None = None, clock: Clock = utc_now,
                 chunk: int = DEFAULT_WRITE_CHUNK) -> None:
        self.coll, self.states, self.clock, self.chunk = collection, states, clock, chunk

    def ensure_indexes(self) -> None:
        self.coll.create_index([("status", 1), ("step", 1), ("category", 1)])
        self.coll.create_index([(FIELD, 1)])
        self._key_unkeyed()

    def _key_unkeyed(self) -> None:
        """Give items written before the queue had its key (`queue`) theirs, once."""
        ops = [UpdateOne({"_id": i["_id"]}, {"$set": {FIELD: queue_key(i["status"], i["step"], i["category"],
                                                                           i["_id"])}})
               for i in self.coll.find({FIELD: {"$exists": False}}, {"status": 1, "step": 1, "category": 1})]
        if ops:
            _written(self.coll, ops, self.chunk)

    @staticmethod
    def item_id(step: str, oid: Any) -> str:
        return f"{step}:{oid}"

    def record(self, run_id: str, step: str, collection: str, decisions: list[Ruling], found_by: str) -> None:
        """Open (or refresh) an item per decision left for review, but those a person decided (unless their
        document's key fields changed since: then it reopens, saying so); resolve the items of linked ones
        (decided or not: the document needs no decision any more).

        `found_by` names what found it: a phase of the step, or `validation` (drift).
        """
        now = self.clock()
        found = {self.item_id(step, d.oid): d for d in decisions if d.category in REVIEW_CATEGORIES}
        decided = self._decided(step, list(found), collection)
        opened = self._open(list(found))
        ops: list[Any] = []
        for item_id, d in found.items():
            kept = opened.get(item_id, {})  # an open item keeps the run that opened it and why it was reopened
            doc = {**item_document(run_id, step, collection, d, found_by, now),
                   "opened_by": kept.get("opened_by") or kept.get("run_id") or run_id,
                   **({"reopened": kept["reopened"]} if kept.get("reopened") else {})}
            if item_id not in decided:  # _id in the replacement too: nx ignores the filter's on upsert
                ops.append(ReplaceOne({"_id": item_id, "status": {"$ne": DECIDED}}, doc, upsert=True))
            elif decided[item_id].fields:
                ops.append(ReplaceOne({"_id": item_id, "status": DECIDED},
                                      {**doc, "decision": decided[item_id].decision.model_dump(),
                                       "reopened": decided[item_id].why()}))
        ops += self._moved([self.item_id(step, d.oid) for d in decisions if d.category not in REVIEW_CATEGORIES],
                           (OPEN, DECIDED), RESOLVED,
                           {**resolution(now), "run_id": run_id, "updated_at": now})
        if ops:
            _written(self.coll, ops, self.chunk)

    def _decided(self, step: str, item_ids: list[str], collection: str) -> dict[str, Change]:
        """Of these items, the decided ones, each with the key fields of its document changed since (none: it
        holds). One look-up, made only when the step has decided items at all."""
        if not item_ids or not counted(self.coll, [prefix_bounds(f"{DECIDED}|{step}|")]):
            return {}
        found = list(self.coll.find({"_id": {"$in": item_ids}, "status": DECIDED},
                                    {"collection": 1, "document_oid": 1, "decision": 1}))
        return self._changes(found, collection)

    def _changes(self, items: list[dict[str, Any]], collection: str | None = None) -> dict[str, Change]:
        """Per decided item, its decision and the key fields of its document that changed since."""
        by_collection: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            by_collection.setdefault(item.get("collection") or collection or "", []).append(item)
        changes: dict[str, Change] = {}
        for name, group in by_collection.items():
            docs = self.states.documents(name, (i["document_oid"] for i in group)) if self.states else {}
            for item in group:
                decision, doc = ItemDecision.model_validate(item["decision"]), docs.get(id_key(item["document_oid"]))
                now = self.states.state(name, doc, decision.id).keys if self.states and doc else decision.keys
                changes[item["_id"]] = Change(decision, [k for k, v in decision.keys.items() if now.get(k) != v])
        return changes

    def undecided(self, findings: list[Found]) -> list[Found]:
        """The findings that still count as drift: not those whose item a person decided (and whose document's
        key fields are unchanged since)."""
        ids = [self.item_id(str(f.step), f.oid) if f.step else None for f in findings]
        held = self.holding({i: None for i in ids if i})
        return [f for f, i in zip(findings, ids, strict=True) if i not in held]

    def holding(self, items: Mapping[str, Any]) -> set[str]:
        """Which of these items (by id) a person decided, their document's key fields unchanged since."""
        found = list(self.coll.find({"_id": {"$in": list(items)}, "status": DECIDED},
                                    {"collection": 1, "document_oid": 1, "decision": 1})) if items else []
        return {item_id for item_id, change in self._changes(found).items() if not change.fields}

    def _moved(self, item_ids: list[str], sources: tuple[str, ...], status: str,
               extra: Mapping[str, Any]) -> list[UpdateOne]:
        """Updates moving these items from one of `sources` to `status` (their key moves with them)."""
        if not item_ids:
            return []
        found = self.coll.find({"_id": {"$in": item_ids}, "status": {"$in": list(sources)}},
                               {"step": 1, "category": 1, "status": 1})
        return [UpdateOne({"_id": i["_id"], "status": i["status"]},
                          {"$set": {"status": status, FIELD: queue_key(status, i["step"], i["category"], i["_id"]),
                                    **extra}}) for i in found]

    def decided(self, decisions: Iterable[DecisionRecord]) -> None:
        """Close each decision's item (`decided`), carrying the decision; a resolved item stays resolved."""
        now = self.clock()
        ops = [UpdateOne({"_id": d.item_id, "status": {"$ne": RESOLVED}},
                         {"$set": {"status": DECIDED, FIELD: queue_key(DECIDED, d.step, d.category, d.item_id),
                                   "decision": ItemDecision.of(d).model_dump(), "reopened": None, "updated_at": now}})
               for d in decisions]
        if ops:
            _written(self.coll, ops, self.chunk)

    def reopen(self, item_ids: list[str], reason: str) -> int:
        """Put decided (or since resolved) items back in the queue saying why (a stale decision, a rolled-back
        one)."""
        ops = self._moved(item_ids, (DECIDED, RESOLVED), OPEN, {"reopened": reason,
                                                               "updated_at": self.clock()})
        return _written(self.coll, ops, self.chunk)

    def _open(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not item_ids:
            return {}
        found = self.coll.find({"_id": {"$in": item_ids}, "status": OPEN}, {"opened_by": 1, "run_id": 1, "reopened": 1})
        return {item["_id"]: item for item in found}

    def opened_by(self, item_ids: list[str]) -> dict[str, str]:
        """The run that opened each of these items, for those open now (an item opened again is new again)."""
        return {item_id: str(item.get("opened_by") or item.get("run_id"))
                for item_id, item in self._open(item_ids).items()}

    def recorded_by_run(self, run_id: str, item_ids: list[str]) -> set[str]:
        """Which of these items this run has already opened or refreshed (their reasons stand)."""
        found = self.coll.find({"_id": {"$in": item_ids}, "run_id": run_id, "status": OPEN}, {"_id": 1})
        return {item["_id"] for item in found} if item_ids else set()

    def resolve_unconfirmed(self, run_id: str, found_by: str) -> int:
        """Resolve the open items `found_by` found earlier that this run did not find again."""
        now = self.clock()
        stale = self.coll.find({**within(prefix_bounds(f"{OPEN}|")), "found_by": found_by, "run_id": {"$ne": run_id}},
                               {"_id": 1})
        ops = self._moved([i["_id"] for i in stale], (OPEN,), RESOLVED,
                          {**resolution(now), "run_id": run_id, "updated_at": now})
        return _written(self.coll, ops, self.chunk)

    def open_counts(self, steps: Iterable[str]) -> dict[str, dict[str, int]]:
        """Open items of these steps per category (index range counts)."""
        counts: dict[str, dict[str, int]] = {}
        for step in steps:
            for category in CATEGORIES:
                n = counted(self.coll, [prefix_bounds(queue_key(OPEN, step, category, ""))])
                if n:
                    counts.setdefault(step, {})[category] = n
        return counts

    def find(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {i["_id"]: i for i in self.coll.find({"_id": {"$in": item_ids}})} if item_ids else {}

    def items(self, ranges: list[Bounds], where: Where = None) -> Iterator[dict[str, Any]]:
        """Every item in these ranges of the queue's key (that `where` selects), in its order (one page in memory
        at a time)."""
        return walk(self.coll, ranges, where)
