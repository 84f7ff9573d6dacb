"""Creating the indexes the steps declare (docs/CONTRACT.md §4), idempotently.

The link fields must be unique among documents where they hold a non-empty
string. MongoDB says that with a partial unique index. Servers that accept
`partialFilterExpression` but ignore it (the embedded nx-27017 makes the index
fully unique) are detected on a scratch collection; there linkage falls back to
a sparse unique index, and when the data makes even that impossible (several
documents holding `""`), to a plain index, leaving uniqueness to validation.
Every fallback is reported. This module is the only place that knows about it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from linkage.core.app_schema import LINK_DOMAIN

Keys = list[tuple[str, int]]


class IndexSpec(BaseModel):
    """An index a step reads through; `unique_link` makes it unique among documents holding a link value.

    `order_only`: only a walk's sort reads through it, so a server that refuses it (nx keeps no `_id` in a
    compound index) sorts without it, and the run reports that.
    """

    collection: str
    keys: Keys
    unique_link: bool = False
    order_only: bool = False

    @property
    def name(self) -> str:
        return "_".join(f"{field}_{direction}" for field, direction in self.keys)



class IndexOutcome(BaseModel):
    collection: str
    name: str
    status: str  # created | exists | fallback_sparse | fallback_plain | fallback_none
    note: str | None = None


def supports_partial_indexes(db: Database, scratch: str) -> bool:
    """True when a partial unique index really ignores documents outside its filter."""
    coll = db[scratch]
    coll.drop()
    try:
        coll.create_index([("k", 1)], unique=True, partialFilterExpression={"k": LINK_DOMAIN})
        coll.insert_many([{"k": ""}, {"k": ""}])
        return True
    except (DuplicateKeyError, OperationFailure):
        return False
    finally:
        coll.drop()


def _existing_keys(db: Database, collection: str) -> list[Keys]:
    return [[(field, int(direction)) for field, direction in index["key"].items()]
            for index in db[collection].list_indexes()]


def _create_unique_link(db: Database, spec: IndexSpec, partial_ok: bool) -> IndexOutcome:
    coll, field = db[spec.collection], spec.keys[0][0]
    if partial_ok:
        coll.create_index(spec.keys, name=spec.name, unique=True, partialFilterExpression={field: LINK_DOMAIN})
        return IndexOutcome(collection=spec.collection, name=spec.name, status="created")
    try:
        coll.create_index(spec.keys, name=spec.name, unique=True, sparse=True)
        return IndexOutcome(collection=spec.collection, name=spec.name, status="fallback_sparse",
                            note="server ignores partialFilterExpression; sparse unique index instead")
    except (DuplicateKeyError, OperationFailure):
        coll.create_index(spec.keys, name=spec.name)
        return IndexOutcome(collection=spec.collection, name=spec.name, status="fallback_plain",
                            note="server ignores partialFilterExpression and several documents hold the same "
                                 f"non-link value in {field}; plain index, uniqueness left to validation")


def ensure_indexes(db: Database, specs: list[IndexSpec], scratch: str) -> list[IndexOutcome]:
    """Create what is missing; an index with the same keys is left as it is."""
    outcomes: list[IndexOutcome] = []
    partial_ok: bool | None = None
    for spec in specs:
        if spec.keys in _existing_keys(db, spec.collection):
            outcomes.append(IndexOutcome(collection=spec.collection, name=spec.name, status="exists"))
            continue
        if spec.unique_link:
            if partial_ok is None:
                partial_ok = supports_partial_indexes(db, scratch)
            outcomes.append(_create_unique_link(db, spec, partial_ok))
        else:
            outcomes.append(_create(db, spec))
    return outcomes


def _create(db: Database, spec: IndexSpec) -> IndexOutcome:
    try:
        db[spec.collection].create_index(spec.keys, name=spec.name)
    except OperationFailure as error:
        if not spec.order_only:
            raise
        return IndexOutcome(collection=spec.collection, name=spec.name, status="fallback_none",
                            note=f"server refused the index ({error.code}); the walk sorts without it")
    return IndexOutcome(collection=spec.collection, name=spec.name, status="created")


def describe_outcomes(outcomes: list[IndexOutcome]) -> dict[str, Any]:
    return {"created": sum(o.status == "created" for o in outcomes),
            "exists": sum(o.status == "exists" for o in outcomes),
            "fallbacks": [o.model_dump() for o in outcomes if o.status.startswith("fallback")]}
