"""Link coverage per relation: how many of the documents that should carry a link do.

Counted with the link-field indexes (`$gt: ""` is an index range), so it is
cheap enough to record before and after every run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pymongo.database import Database

from linkage.app_schema import CUSTOMER_LINK, CUSTOMERS, DELIVERIES, LINK_DOMAIN, ORDER_LINK, USER_LINK, USERS


class Relation(BaseModel):
    collection: str
    field: str
    scope: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return f"{self.collection}.{self.field}"

    def total(self, db: Database) -> int:
        """Documents in scope: from the collection's metadata when the scope is all of it (no scan)."""
        coll = db[self.collection]
        return coll.count_documents(self.scope) if self.scope else coll.estimated_document_count()


RELATIONS = [
    Relation(collection=DELIVERIES, field=ORDER_LINK),
    Relation(collection=USERS, field=USER_LINK, scope={"role": "customer"}),
    Relation(collection=CUSTOMERS, field=CUSTOMER_LINK),
]
ORDER_RELATION, USER_RELATION = RELATIONS[0].name, RELATIONS[1].name


class Coverage(BaseModel):
    total: int
    linked: int

    @property
    def ratio(self) -> float:
        return round(self.linked / self.total, 4) if self.total else 1.0

    def as_record(self) -> dict[str, float]:
        return {"total": self.total, "linked": self.linked, "ratio": self.ratio}


def link_coverage(db: Database, linked: dict[str, int] | None = None) -> dict[str, dict[str, float]]:
    """Per relation: documents in scope, how many carry a link, and the ratio.

    `linked` gives the linked counts when a walk over the link fields already
    counted them (validation does), so only the totals are asked for.
    """
    coverage = {}
    for relation in RELATIONS:
        count = linked[relation.name] if linked is not None else db[relation.collection].count_documents(
            {**relation.scope, relation.field: LINK_DOMAIN})
        coverage[relation.name] = Coverage(total=relation.total(db), linked=count).as_record()
    return coverage
