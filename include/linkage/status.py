"""What `linkage status` shows: link coverage, open review items, runs, the lock."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from linkage.indexes import LINK_DOMAIN
from linkage.lock import holder

#: relation -> (collection, link field, filter of documents that should carry the link)
RELATIONS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "delivery_statuses.order_id": ("delivery_statuses", "order_id", {}),
    "users.customer_v2_id": ("users", "customer_v2_id", {"role": "customer"}),
    "customers_v2.user_id": ("customers_v2", "user_id", {}),
}


def link_coverage(db: Database) -> dict[str, dict[str, Any]]:
    """Per relation: documents in scope, how many carry a link, and the ratio."""
    coverage = {}
    for relation, (collection, field, scope) in RELATIONS.items():
        total = db[collection].count_documents(scope)
        linked = db[collection].count_documents({**scope, field: LINK_DOMAIN})
        coverage[relation] = {"total": total, "linked": linked, "ratio": round(linked / total, 4) if total else 1.0}
    return coverage


def status(lk: Any) -> dict[str, Any]:
    lock = holder(lk.lock)
    return {
        "db": lk.settings.db,
        "coverage": link_coverage(lk.db),
        "open_review_items": lk.reviews.open_counts(),
        "recent_runs": lk.runs.recent(),
        "lock": lock,
    }
