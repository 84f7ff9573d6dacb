"""What `linkage status` shows: link coverage, open review items, recent runs, the lock, why drift did or did not
page last, and the backups' disk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING

from linkage.engine.coverage import link_coverage
from linkage.mongo import concerns
from linkage.relations import REGISTRY
from linkage.stages.retention import disk
from linkage.store.lease import holder

if TYPE_CHECKING:
    from linkage.run.session import Linkage


def status(lk: Linkage) -> dict[str, Any]:
    return {
        "db": lk.settings.db,
        "concerns": concerns.describe(lk.client, lk.read_concern),
        "coverage": link_coverage(lk.db, REGISTRY.relations()),
        "open_review_items": lk.reviews.open_counts(REGISTRY),
        "recent_runs": lk.runs.recent(),
        "lock": holder(lk.lock),
        "paging": (lk.runs.coll.find_one({"paging": {"$ne": None}}, {"paging": 1, "_id": 0},
                                         sort=[("created_at", DESCENDING)]) or {}).get("paging"),
        "backups": disk(lk),
    }
