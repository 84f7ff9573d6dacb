"""Documents the pipeline left alone, for a person to look at (`linkage_review`).

One item per (step, document), upserted, so re-runs update rather than pile up;
an item is closed (`resolved`) when a later run finds its document linked.
Items carry ids, categories and the reason (a field name), never raw phones or
emails. Only real runs write here: a dry run reports what it found in its own
run record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReplaceOne, UpdateMany
from pymongo.collection import Collection

from linkage.clock import Clock, utc_now
from linkage.models import REVIEW_CATEGORIES, Decision

OPEN, RESOLVED = "open", "resolved"


def resolution(now: datetime) -> dict[str, Any]:
    """What resolving an item sets: its status, and when, as a number (what housekeeping compares on every
    server) and as a date (what a TTL index expires on, where the server has them)."""
    return {"status": RESOLVED, "resolved_at": now.timestamp(), "resolved_on": now}


class ReviewQueue:
    def __init__(self, collection: Collection, clock: Clock = utc_now) -> None:
        self.coll, self.clock = collection, clock

    def ensure_indexes(self) -> None:
        self.coll.create_index([("status", 1), ("step", 1), ("category", 1)])

    @staticmethod
    def item_id(step: str, oid: Any) -> str:
        return f"{step}:{oid}"

    def record(self, run_id: str, step: str, collection: str, decisions: list[Decision], found_by: str) -> None:
        """Open (or refresh) an item per decision left for review; resolve the items of linked ones.

        `found_by` names what found it: a phase of the step, or `validation` (drift).
        """
        now = self.clock()
        ops: list[Any] = []
        reviewed = {self.item_id(step, d.oid): d for d in decisions if d.category in REVIEW_CATEGORIES}
        opened = self.opened_by(list(reviewed))
        for item_id, d in reviewed.items():
            ops.append(ReplaceOne(  # _id in the replacement too: nx ignores the filter's on upsert
                {"_id": item_id},
                {"_id": item_id, "step": step, "collection": d.collection or collection, "document_oid": d.oid,
                 "document_id": d.app_id if isinstance(d.app_id, str) else None,
                 "category": d.category.value, "reason": d.reason, "candidate": d.link,
                 "status": OPEN, "found_by": found_by, "run_id": run_id, "updated_at": now,
                 "opened_by": opened.get(item_id, run_id)},
                upsert=True,
            ))
        resolved = [self.item_id(step, d.oid) for d in decisions if d.category not in REVIEW_CATEGORIES]
        if resolved:
            ops.append(UpdateMany({"_id": {"$in": resolved}, "status": OPEN},
                                  {"$set": {**resolution(now), "run_id": run_id, "updated_at": now}}))
        if ops:
            self.coll.bulk_write(ops, ordered=False)

    def opened_by(self, item_ids: list[str]) -> dict[str, str]:
        """The run that opened each of these items, for those open now (an item opened again is new again)."""
        if not item_ids:
            return {}
        found = self.coll.find({"_id": {"$in": item_ids}, "status": OPEN}, {"opened_by": 1, "run_id": 1})
        return {item["_id"]: item.get("opened_by") or item.get("run_id") for item in found}

    def recorded_by_run(self, run_id: str, item_ids: list[str]) -> set[str]:
        """Which of these items this run has already opened or refreshed (their reasons stand)."""
        found = self.coll.find({"_id": {"$in": item_ids}, "run_id": run_id, "status": OPEN}, {"_id": 1})
        return {item["_id"] for item in found} if item_ids else set()

    def resolve_unconfirmed(self, run_id: str, found_by: str) -> int:
        """Resolve the open items `found_by` found earlier that this run did not find again."""
        now = self.clock()
        return self.coll.update_many(
            {"status": OPEN, "found_by": found_by, "run_id": {"$ne": run_id}},
            {"$set": {**resolution(now), "run_id": run_id, "updated_at": now}}).modified_count

    def open_counts(self, steps: Iterable[str]) -> dict[str, dict[str, int]]:
        """Open items of these steps per category (counted per pair: portable and index-backed)."""
        counts: dict[str, dict[str, int]] = {}
        for step in steps:
            for category in sorted(REVIEW_CATEGORIES):
                n = self.coll.count_documents({"status": OPEN, "step": step, "category": category.value})
                if n:
                    counts.setdefault(step, {})[category.value] = n
        return counts

    @staticmethod
    def query(step: str | None = None, category: str | None = None, status: str | None = OPEN) -> dict[str, Any]:
        return {key: value for key, value in (("step", step), ("category", category), ("status", status)) if value}

    def items(self, query: dict[str, Any], *, skip: int = 0, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Items in a stable order (by `_id`), a page at a time when `limit` is given."""
        cursor = self.coll.find(query).sort("_id", ASCENDING).skip(skip)
        if limit is not None:
            cursor = cursor.limit(limit)
        yield from cursor.batch_size(1000)
