"""Documents the pipeline left alone, for a person to look at (`linkage_review`).

One item per (step, document), upserted, so re-runs update rather than pile up;
an item is closed when a later run finds its document linked. Items carry ids,
categories and the reason (a field name), never raw phones or emails.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pymongo import ReplaceOne, UpdateMany
from pymongo.collection import Collection

from linkage.models import REVIEW_CATEGORIES, Decision, Step


class ReviewQueue:
    def __init__(self, collection: Collection) -> None:
        self.coll = collection

    def ensure_indexes(self) -> None:
        self.coll.create_index([("status", 1), ("step", 1), ("category", 1)])

    @staticmethod
    def item_id(step: str, oid: Any) -> str:
        return f"{step}:{oid}"

    def record(self, run_id: str, step: str, collection: str, decisions: list[Decision]) -> None:
        now = datetime.now(timezone.utc)
        ops: list[Any] = []
        for d in decisions:
            if d.category in REVIEW_CATEGORIES:
                item_id = self.item_id(step, d.oid)
                ops.append(ReplaceOne(  # _id in the replacement too: nx ignores the filter's on upsert
                    {"_id": item_id},
                    {"_id": item_id, "step": step, "collection": collection, "document_oid": d.oid,
                     "document_id": d.app_id if isinstance(d.app_id, str) else None,
                     "category": d.category.value, "reason": d.reason, "candidate": d.link,
                     "status": "open", "run_id": run_id, "updated_at": now},
                    upsert=True,
                ))
        resolved = [self.item_id(step, d.oid) for d in decisions if d.category not in REVIEW_CATEGORIES]
        if resolved:
            ops.append(UpdateMany({"_id": {"$in": resolved}}, {"$set": {"status": "resolved", "run_id": run_id, "updated_at": now}}))
        if ops:
            self.coll.bulk_write(ops, ordered=False)

    def open_counts(self) -> dict[str, dict[str, int]]:
        """Open items per step and category (counted per pair: portable and index-backed)."""
        counts: dict[str, dict[str, int]] = {}
        for step in Step:
            for category in sorted(REVIEW_CATEGORIES):
                n = self.coll.count_documents({"status": "open", "step": step.value, "category": category.value})
                if n:
                    counts.setdefault(step.value, {})[category.value] = n
        return counts
