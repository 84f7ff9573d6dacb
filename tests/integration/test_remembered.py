"""Issue 19 part 4: a decided item stays closed. The nightly reconcile neither reopens it, nor counts it as
drift, nor alerts on it, for as long as the fields the rules matched its document on are as they were; when
one changes (the app moves a delivery to another day), the item reopens saying which."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from linkage.core.models import RunKind
from linkage.review.intake import DecisionInput, record_decisions
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate


def decide_none(lk: Linkage, items: list[dict[str, Any]]) -> None:
    record_decisions(lk, [DecisionInput(line=n, item_id=i["_id"], decision="none", note="checked by hand")
                          for n, i in enumerate(items, start=1)], by="airflow:reviewer", via="api")


def drift_alerts(lk: Linkage) -> int:
    return lk.alerts.coll.count_documents({"event": "drift_found"})


def test_decided_items_stay_closed_uncounted_and_unalerted_until_a_key_field_changes(
        lk: Linkage, db: Database, seeded: dict) -> None:
    first = migrate(lk, MigrationParams(), "test")
    assert first.drift and first.drift.total > 0 and drift_alerts(lk) == 1
    drift_items = list(lk.reviews.coll.find({"category": {"$in": ["dangling", "conflict", "one_sided"]},
                                             "status": "open"}))
    ambiguous = lk.reviews.coll.find_one({"step": "order_delivery", "category": "ambiguous"})
    decide_none(lk, [*drift_items, ambiguous])
    decided = {i["_id"]: i for i in lk.reviews.coll.find({"status": "decided"})}
    assert len(decided) == len(drift_items) + 1

    for night in (1, 2):
        run = migrate(lk, MigrationParams(), f"night {night}", kind=RunKind.RECONCILE)
        assert run.state == "succeeded" and run.drift is not None
        assert run.drift.total == 0, run.drift.by_expectation  # every drift left is a decided item's
        assert drift_alerts(lk) == 1  # no new alert
        now = {i["_id"]: i for i in lk.reviews.coll.find({"_id": {"$in": list(decided)}})}
        repaired = {k for k, i in now.items() if i["status"] == "resolved"}  # one-sided pairs the rules completed
        assert {now[k]["category"] for k in repaired} <= {"one_sided"}
        assert {k: i["status"] for k, i in now.items() if k not in repaired} == dict.fromkeys(
            set(decided) - repaired, "decided")
        assert all(now[k]["updated_at"] == decided[k]["updated_at"] for k in set(decided) - repaired)
        assert lk.reviews.coll.count_documents({"status": "open", "reopened": {"$nin": [None]}}) == 0

    delivery = db.delivery_statuses.find_one({"_id": ambiguous["document_oid"]})
    db.delivery_statuses.update_one({"_id": delivery["_id"]}, {"$set": {"delivery_date": "2031-01-01"}})
    migrate(lk, MigrationParams(), "night 3", kind=RunKind.RECONCILE)
    reopened = lk.reviews.coll.find_one({"_id": ambiguous["_id"]})
    assert reopened["status"] == "open" and reopened["category"] == "unmatched"
    assert reopened["reopened"] == "delivery_date changed since airflow:reviewer decided none"
    still = lk.reviews.coll.count_documents({"_id": {"$in": list(decided)}, "status": "decided"})
    assert still == len(decided) - 1 - lk.reviews.coll.count_documents({"_id": {"$in": list(decided)},
                                                                        "status": "resolved"})
