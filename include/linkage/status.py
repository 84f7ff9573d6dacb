"""What `linkage status` shows: link coverage, open review items, recent runs, the lock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from linkage.coverage import link_coverage
from linkage.lock import holder
from linkage.steps import REGISTRY

if TYPE_CHECKING:
    from linkage.handle import Linkage


def status(lk: Linkage) -> dict[str, Any]:
    return {
        "db": lk.settings.db,
        "coverage": link_coverage(lk.db, REGISTRY.relations()),
        "open_review_items": lk.reviews.open_counts(REGISTRY),
        "recent_runs": lk.runs.recent(),
        "lock": holder(lk.lock),
    }
