"""What `linkage status` shows: link coverage, open review items, recent runs, the lock, why drift did or did not
page last, and the backups' disk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING

from linkage import concerns
from linkage.coverage import link_coverage
from linkage.lock import holder
from linkage.retention import disk
from linkage.steps import REGISTRY

if TYPE_CHECKING:
    from linkage.handle import Linkage


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
