"""What a relation's validation is made of: checks that walk the data and the findings they yield.

A `Check` is one walk of the data, declared by the step whose rules it
measures; every `Finding` it yields names one of those rules by its object.
Walking a link field in its own order puts every document sharing a value in
one chunk (duplicates are found without a `$group`) and makes the documents they
name one index range (`linkage.mongo.lookups`): memory holds one chunk whatever the
collection size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from pymongo.database import Database

from linkage.core.app_schema import LINK_DOMAIN, UNSET_VALUES
from linkage.core.models import Category, Ref, Ruling
from linkage.engine.coverage import Relation
from linkage.engine.passes import pages
from linkage.mongo.resumable import resumable
from linkage.relations.rules import Rule
from linkage.store.journal import LinkValue

CHUNK = 5000
#: Linked documents per relation name, counted by the walks on their way (the coverage needs no count of its own).
LinkCounts = Counter[str]


class Finding(NamedTuple):
    """One document breaking one rule, and the link values that break it."""

    rule: Rule
    collection: str
    oid: Any
    app_id: Any
    values: tuple[LinkValue, ...]
    category: Category
    reason: str
    #: Who holds the other side (a conflict, a one-sided pair), where the walk knows it.
    holders: tuple[Ref, ...] = ()

    @property
    def step(self) -> str | None:
        return self.rule.step

    @property
    def example(self) -> str:
        return f"{self.collection} _id={self.oid}"

    def decision(self) -> Ruling:
        """As a review item: the document, its category, why (never a value), who holds the other side and,
        for a dangling link, the id it names."""
        named = self.values[0].value if self.values else None
        missing = named if self.category == Category.DANGLING and isinstance(named, str) else None
        return Ruling(oid=self.oid, app_id=self.app_id, category=self.category, reason=self.reason,
                        collection=self.collection, holders=self.holders, missing=missing)


@dataclass(frozen=True)
class Check:
    """One walk of the data: the rules its findings are for, and the relations whose links it counts."""

    name: str
    measures: tuple[Rule, ...]
    walk: Callable[[Database, LinkCounts], Iterator[list[Finding]]]
    counts: tuple[Relation, ...] = ()


def link_value(coll: str, doc: dict[str, Any], field: str) -> LinkValue:
    return LinkValue(coll, doc["_id"], field, doc.get(field))


class Strays:
    """What a walk of every set value (`link_walk(..., strays=)`) says of the values that are not link values:
    `met` when it read one, or when it was resumed (the rest of it reads link values only)."""

    def __init__(self) -> None:
        self.met = False

    def noting(self, docs: Iterable[dict[str, Any]], field: str) -> Iterator[dict[str, Any]]:
        for doc in docs:
            self.met = self.met or not isinstance(doc.get(field), str)
            yield doc


def link_walk(db: Database, source: str, field: str, projection: dict[str, int],
              strays: Strays | None = None) -> Iterator[list[dict[str, Any]]]:
    """The documents holding a link in `field`, in its order, a chunk at a time (every document sharing a
    value in one chunk); a read the server ends goes on after the last chunk (`linkage.mongo.resumable`), so a
    killed cursor never leaves a document uncounted.

    With `strays`, the read takes every set value, not only the link values (the chunks still hold link
    values only), and `strays` says whether it met another: a check for those then needs its own scan of
    the collection only on a night that has one, not every night. The servers order other types apart
    from strings differently (the embedded one among them, by their JSON text), so the walk only notes
    them; it never finds them by their place in the order."""
    def read_after(value: Any) -> Iterable[dict[str, Any]]:
        if value is None:  # a link value is a string above ""; a set value is anything but unset
            cursor = db[source].find({field: {"$nin": UNSET_VALUES} if strays else LINK_DOMAIN}, projection)
            cursor = cursor.sort(field, 1).batch_size(CHUNK)
            return strays.noting(cursor, field) if strays else cursor
        if strays:  # resumed after a link value: the values of other types are not read again
            strays.met = True
        return db[source].find({field: {"$gt": value}}, projection).sort(field, 1).batch_size(CHUNK)

    return resumable(read_after, lambda cursor: pages(cursor, CHUNK, field), lambda chunk: chunk[-1][field])
