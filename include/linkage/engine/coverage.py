"""Link coverage per relation: how many of the documents that should carry a link do.

A `Relation` is declared by the step that links it (`StepSpec.relations`); the
functions here take the relations to count, so they work for any registered
relation. `linkage status` counts the linked documents with the link-field
indexes (`$gt: ""` is an index range); a run's validation counts them on its
walks instead, and derives the coverage before the run from what it wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from pymongo.database import Database

from linkage.core.app_schema import LINK_DOMAIN
from linkage.mongo.counting import count


class Relation(BaseModel):
    """Documents of `collection` (within `scope`) that should carry a link in `field`."""

    model_config = ConfigDict(frozen=True)

    collection: str
    field: str
    scope: dict[str, Any] = {}
    #: What the count covers, in words (`linkage status` and the view say it beside the number).
    counts: str = ""

    @property
    def name(self) -> str:
        return f"{self.collection}.{self.field}"

    def __hash__(self) -> int:
        return hash(self.name)

    def in_scope(self, doc: Mapping[str, Any]) -> bool:
        return all(doc.get(key) == value for key, value in self.scope.items())

    def total(self, db: Database) -> int:
        """Documents in scope: from the collection's metadata when the scope is all of it (no scan)."""
        coll = db[self.collection]
        return count(coll, self.scope) if self.scope else coll.estimated_document_count()

    def count_linked(self, db: Database) -> int:
        return count(db[self.collection], {**self.scope, self.field: LINK_DOMAIN})


class Coverage(BaseModel):
    total: int
    linked: int

    @property
    def ratio(self) -> float:
        """The share linked; 0 when there are no documents: coverage of nothing is never full coverage."""
        return round(self.linked / self.total, 4) if self.total else 0.0

    def as_record(self) -> dict[str, float]:
        return {"total": self.total, "linked": self.linked, "ratio": self.ratio}


def shown(coverage: Mapping[str, float]) -> str:
    """A coverage as people read it: `86.82%`, or `no documents` (never 100% of nothing)."""
    return f"{coverage['ratio']:.2%}" if coverage["total"] else "no documents"


def less_written(after: dict[str, dict[str, float]], written: Mapping[str, int]) -> dict[str, dict[str, float]]:
    """The coverage as a run found it: the coverage after it, less the links it wrote.

    No second count of the database: what the run changed is exactly what it wrote.
    """
    return {name: Coverage(total=int(cov["total"]), linked=int(cov["linked"]) - written.get(name, 0)).as_record()
            for name, cov in after.items()}


def link_coverage(db: Database, relations: Iterable[Relation],
                  linked: Mapping[str, int] | None = None) -> dict[str, dict[str, float]]:
    """Per relation: documents in scope, how many carry a link, and the ratio.

    `linked` gives the linked counts when a walk over the link fields already
    counted them (validation does), so only the totals are asked for.
    """
    coverage = {}
    for relation in relations:
        count = linked.get(relation.name, 0) if linked is not None else relation.count_linked(db)
        coverage[relation.name] = Coverage(total=relation.total(db), linked=count).as_record()
    return coverage
