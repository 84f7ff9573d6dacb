"""Bounded bookkeeping: what a run cleans up when it ends, so the nightly job can run for a year.

After every real run (the plan's last stage, under the run's lease):
- backups nothing needs any more are deleted (`linkage.stages.retention`);
- runs past their rollback window (`LINKAGE_REVERSIBLE_DAYS`) have their journal
  pruned; their record stays, saying when, and a rollback of them is refused;
- resolved review items, alerts and run records past their retention are
  deleted (run records only once their journal is gone).

Where the server has TTL indexes (`expireAfterSeconds` on a date field, kept in
its index listing: MongoDB, and, measured, the embedded nx-27017, which expires
on access) alerts and resolved review items also carry one. The pass here holds
the bounds on every server whatever it offers, and the run record says whether
the TTL indexes were there too.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import OperationFailure

from linkage.run.session import Linkage
from linkage.stages.retention import prune
from linkage.store.review_queue import RESOLVED

log = logging.getLogger("linkage.stages.housekeeping")
DAY = 86_400


def supports_ttl(db: Database, scratch: str) -> bool:
    """Whether the server keeps a TTL index as one (its listing shows `expireAfterSeconds`)."""
    coll = db[scratch]
    coll.drop()
    try:
        coll.create_index([("at", 1)], expireAfterSeconds=DAY)
        return any("expireAfterSeconds" in index for index in coll.list_indexes())
    except OperationFailure:
        return False
    finally:
        coll.drop()


def ensure_ttl_indexes(lk: Linkage) -> bool:
    """TTL indexes on the alerts and the resolved review items, where the server has them."""
    if not supports_ttl(lk.db, lk.settings.collection("ttl_probe")):
        return False
    settings = lk.settings
    lk.alerts.coll.create_index([("at", 1)], expireAfterSeconds=settings.alert_retention_days * DAY)
    lk.reviews.coll.create_index([("resolved_on", 1)], expireAfterSeconds=settings.review_retention_days * DAY,
                                 partialFilterExpression={"status": RESOLVED})
    return True


def prune_journals(lk: Linkage, now: datetime) -> list[str]:
    """Runs past their rollback window: journal deleted, record marked (no longer reversible)."""
    cutoff = now - timedelta(days=lk.settings.reversible_days)
    pruned = []
    query = {"created_at": {"$lt": cutoff}, "journal_pruned_at": None, "state": {"$ne": "running"}}
    for run in lk.runs.coll.find(query, {"_id": 1}):
        lk.journal.coll.delete_many({"run_id": run["_id"]})
        lk.runs.update(run["_id"], journal_pruned_at=now.isoformat(timespec="seconds"))
        pruned.append(run["_id"])
    return pruned


def expire(lk: Linkage, now: datetime) -> dict[str, int]:
    """Resolved review items, alerts and run records past their retention (a run record only without journal)."""
    settings = lk.settings
    return {
        "review_items": lk.reviews.coll.delete_many(
            {"status": RESOLVED, "resolved_at": {"$lt": now.timestamp() - settings.review_retention_days * DAY}}
        ).deleted_count,
        "alerts": lk.alerts.coll.delete_many(
            {"at": {"$lt": now - timedelta(days=settings.alert_retention_days)}}).deleted_count,
        "runs": lk.runs.coll.delete_many(
            {"created_at": {"$lt": now - timedelta(days=settings.run_retention_days)},
             "journal_pruned_at": {"$ne": None}}).deleted_count,
    }


def housekeeping(lk: Linkage, run_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The whole pass after a run; what it did goes in that run's record and the log."""
    now = now or lk.clock()
    pruned = prune(lk, now=now)
    outcome = {"backups": pruned.as_record(), "journals_pruned": prune_journals(lk, now),
               "expired": expire(lk, now), "ttl_indexes": ensure_ttl_indexes(lk)}
    for entry in pruned.deleted:
        log.info("backup deleted: %s (%s, %s bytes): %s", entry.path, entry.run_id, entry.bytes, entry.why)
    lk.runs.update(run_id, housekeeping=outcome)
    return outcome
