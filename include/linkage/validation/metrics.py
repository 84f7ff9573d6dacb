"""What validation measures, computed by MongoDB in bounded memory.

Every metric is a count (or a ratio) obtained with indexed queries, `$group` and
joins by key in chunks, so memory holds one chunk whatever the collection size
(cursors are given a batch size: by default a getMore returns up to 16 MB).
Violations that were already known before the run (open review items: dangling
and one-sided links the pipeline found and left for a person) are excluded, so a
run fails validation only for violations nobody has recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bson
from pydantic import BaseModel, Field
from pymongo.collection import Collection
from pymongo.database import Database

from linkage import backup
from linkage.engine import pages
from linkage.indexes import LINK_DOMAIN
from linkage.models import Step
from linkage.normalize import is_key
from linkage.reviews import ReviewQueue
from linkage.status import link_coverage

CHUNK = 5000
EXAMPLES = 5
KNOWN_CATEGORIES = ["dangling", "one_sided", "conflict"]


class Metric(BaseModel):
    """An observed value and a few failing documents (ids only, never PII)."""

    value: float | None
    examples: list[str] = Field(default_factory=list)
    note: str | None = None


class Tally:
    def __init__(self) -> None:
        self.count, self.examples = 0, []

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    def metric(self) -> Metric:
        return Metric(value=self.count, examples=self.examples)


def _known(reviews: ReviewQueue, step: Step, oids: list[Any]) -> set[Any]:
    """Which of these documents already have an open review item for a link problem."""
    if not oids:
        return set()
    ids = {reviews.item_id(step, oid): oid for oid in oids}
    found = reviews.coll.find({"_id": {"$in": list(ids)}, "status": "open", "category": {"$in": KNOWN_CATEGORIES}}, {"_id": 1})
    return {ids[item["_id"]] for item in found}


def _duplicated(coll: Collection, field: str) -> tuple[set[str], Tally]:
    """Link values held by more than one document (`$group` on the server)."""
    tally, values = Tally(), set()
    for row in coll.aggregate([{"$match": {field: LINK_DOMAIN}}, {"$group": {"_id": f"${field}", "n": {"$sum": 1}}},
                               {"$match": {"n": {"$gt": 1}}}]):
        values.add(row["_id"])
        for _ in range(row["n"]):
            tally.add(f"{coll.name}.{field}={row['_id']}")
    return values, tally


def order_links(db: Database, reviews: ReviewQueue) -> dict[str, Metric]:
    """Every set `order_id` is one string naming an existing order."""
    dangling, not_single = Tally(), Tally()
    cursor = db.delivery_statuses.find({"order_id": {"$nin": [None, ""]}}, {"order_id": 1}).sort("_id", 1).batch_size(CHUNK)
    for chunk in pages(cursor, CHUNK):
        strings = list({d["order_id"] for d in chunk if isinstance(d["order_id"], str)})
        existing = {o["id"] for o in db.orders.find({"id": {"$in": strings}}, {"id": 1}) if is_key(o.get("id"))}
        bad = [d for d in chunk if not isinstance(d["order_id"], str) or d["order_id"] not in existing]
        known = _known(reviews, Step.ORDER_DELIVERY, [d["_id"] for d in bad])
        for d in bad:
            if d["_id"] not in known:
                (dangling if isinstance(d["order_id"], str) else not_single).add(f"delivery_statuses _id={d['_id']}")
    return {"order_refs_dangling": dangling.metric(), "order_links_not_single": not_single.metric()}


def user_customer_links(db: Database, reviews: ReviewQueue) -> dict[str, Metric]:
    """Both link fields name existing documents, are unique, and agree with each other."""
    dup_users, user_dups = _duplicated(db.users, "customer_v2_id")
    dup_customers, customer_dups = _duplicated(db.customers_v2, "user_id")
    user_dangling, customer_dangling, disagree = Tally(), Tally(), Tally()

    for chunk in pages(db.users.find({"customer_v2_id": LINK_DOMAIN}, {"id": 1, "customer_v2_id": 1})
                         .sort("_id", 1).batch_size(CHUNK), CHUNK):
        customers = {c["id"]: c for c in db.customers_v2.find(
            {"id": {"$in": list({u["customer_v2_id"] for u in chunk})}}, {"id": 1, "user_id": 1}) if is_key(c.get("id"))}
        bad = [u for u in chunk if customers.get(u["customer_v2_id"], {}).get("user_id") != u.get("id")]
        known = _known(reviews, Step.USER_CUSTOMER, [u["_id"] for u in bad])
        for u in bad:
            if u["_id"] in known:
                continue
            if u["customer_v2_id"] not in customers:
                user_dangling.add(f"users _id={u['_id']}")
            elif u["customer_v2_id"] not in dup_users:
                disagree.add(f"users _id={u['_id']}")

    for chunk in pages(db.customers_v2.find({"user_id": LINK_DOMAIN}, {"id": 1, "user_id": 1})
                         .sort("_id", 1).batch_size(CHUNK), CHUNK):
        users = {u["id"]: u for u in db.users.find(
            {"id": {"$in": list({c["user_id"] for c in chunk})}}, {"id": 1, "customer_v2_id": 1}) if is_key(u.get("id"))}
        bad = [c for c in chunk if users.get(c["user_id"], {}).get("customer_v2_id") != c.get("id")]
        known = _known(reviews, Step.USER_CUSTOMER,
                       [users[c["user_id"]]["_id"] if c["user_id"] in users else c["_id"] for c in bad])
        for c in bad:
            user = users.get(c["user_id"])
            if user is None:
                if c["_id"] not in known:
                    customer_dangling.add(f"customers_v2 _id={c['_id']}")
            elif user["_id"] not in known and c["user_id"] not in dup_customers:
                disagree.add(f"customers_v2 _id={c['_id']}")

    return {"user_refs_dangling": user_dangling.metric(), "customer_refs_dangling": customer_dangling.metric(),
            "user_link_duplicates": user_dups.metric(), "customer_link_duplicates": customer_dups.metric(),
            "links_disagree": disagree.metric()}


def documents_lost(db: Database, backup_path: str | None) -> dict[str, Metric]:
    """Documents in the run's backup that no longer exist (new documents are fine:
    the live app keeps inserting while a run works)."""
    if not backup_path:
        return {"documents_lost": Metric(value=None, note="no backup for this run: not checked")}
    root = Path(backup_path)
    manifest = backup.load_manifest(root)
    lost = Tally()
    for name, entry in manifest.collections.items():
        ids = (bson.decode(raw)["_id"] for raw in backup.documents(root, entry, manifest.gzip))
        for chunk in pages(({"_id": oid} for oid in ids), CHUNK):
            wanted = [d["_id"] for d in chunk]
            present = {d["_id"] for d in db[name].find({"_id": {"$in": wanted}}, {"_id": 1})}
            for oid in wanted:
                if oid not in present:
                    lost.add(f"{name} _id={oid}")
    return {"documents_lost": lost.metric()}


def coverage(db: Database) -> dict[str, Metric]:
    cov = link_coverage(db)
    return {
        "order_coverage": Metric(value=cov["delivery_statuses.order_id"]["ratio"],
                                 note=f"{cov['delivery_statuses.order_id']['linked']}/{cov['delivery_statuses.order_id']['total']}"),
        "user_coverage": Metric(value=cov["users.customer_v2_id"]["ratio"],
                                note=f"{cov['users.customer_v2_id']['linked']}/{cov['users.customer_v2_id']['total']}"),
    }


def measure(db: Database, reviews: ReviewQueue, backup_path: str | None) -> dict[str, Metric]:
    return {**order_links(db, reviews), **user_customer_links(db, reviews), **documents_lost(db, backup_path),
            **coverage(db)}
