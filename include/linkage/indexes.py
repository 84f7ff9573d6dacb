"""The indexes the migrations rely on (docs/CONTRACT.md §4), created idempotently.

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

from linkage.app_schema import CUSTOMER_LINK, CUSTOMERS, DELIVERIES, LINK_DOMAIN, ORDER_LINK, ORDERS, USER_LINK, USERS

Keys = list[tuple[str, int]]


class IndexSpec(BaseModel):
    collection: str
    keys: Keys
    unique_link: bool = False

    @property
    def name(self) -> str:
        return "_".join(f"{field}_{direction}" for field, direction in self.keys)


SPECS = [
    IndexSpec(collection=DELIVERIES, keys=[(ORDER_LINK, 1)]),
    IndexSpec(collection=DELIVERIES, keys=[("customer_id", 1), ("delivery_date", 1)]),
    IndexSpec(collection=ORDERS, keys=[("customer_id", 1), ("delivery_date", 1)]),
    IndexSpec(collection=ORDERS, keys=[("id", 1)]),  # beyond §4: existence checks of order_id
    IndexSpec(collection=USERS, keys=[(USER_LINK, 1)], unique_link=True),
    IndexSpec(collection=USERS, keys=[("phone", 1)]),
    IndexSpec(collection=USERS, keys=[("email", 1)]),
    IndexSpec(collection=USERS, keys=[("id", 1)]),  # beyond §4: joins by id (reconciliation, validation)
    IndexSpec(collection=CUSTOMERS, keys=[(CUSTOMER_LINK, 1)], unique_link=True),
    IndexSpec(collection=CUSTOMERS, keys=[("phone", 1)]),
    IndexSpec(collection=CUSTOMERS, keys=[("email", 1)]),
    IndexSpec(collection=CUSTOMERS, keys=[("id", 1)]),  # beyond §4: joins by id (reconciliation, validation)
]


class IndexOutcome(BaseModel):
    collection: str
    name: str
    status: str  # created | exists | fallback_sparse | fallback_plain
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


def ensure_indexes(db: Database, scratch: str) -> list[IndexOutcome]:
    """Create what is missing; an index with the same keys is left as it is."""
    outcomes: list[IndexOutcome] = []
    partial_ok: bool | None = None
    for spec in SPECS:
        if spec.keys in _existing_keys(db, spec.collection):
            outcomes.append(IndexOutcome(collection=spec.collection, name=spec.name, status="exists"))
            continue
        if spec.unique_link:
            if partial_ok is None:
                partial_ok = supports_partial_indexes(db, scratch)
            outcomes.append(_create_unique_link(db, spec, partial_ok))
        else:
            db[spec.collection].create_index(spec.keys, name=spec.name)
            outcomes.append(IndexOutcome(collection=spec.collection, name=spec.name, status="created"))
    return outcomes


def describe_outcomes(outcomes: list[IndexOutcome]) -> dict[str, Any]:
    return {"created": sum(o.status == "created" for o in outcomes),
            "exists": sum(o.status == "exists" for o in outcomes),
            "fallbacks": [o.model_dump() for o in outcomes if o.status.startswith("fallback")]}
