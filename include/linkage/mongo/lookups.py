"""Joining a batch to another collection by key, in bounded memory, index-backed on every server.

A batch walked in the order of a join key holds contiguous keys, so the
documents it joins to are one index range from its first key to its last: read
once, the join stays linear in the collection. When the range would hold many
more documents than the batch needs (the keys are sparse, as a nightly
reconciliation's are), one `$in` over the keys is cheaper. Servers differ in
which of the two they answer well (the embedded server scans for `$in`), so the
walk order, not the query, carries the join.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pymongo.collection import Collection

from linkage.core.keys import id_key

#: A range is read whole while it holds at most this many documents per key wanted.
DENSE_PER_KEY = 4


def by_keys(coll: Collection, field: str, keys: Iterable[Any], projection: dict[str, int] | None, *,
            range_limit: int | None, narrowed: list[dict[str, Any]] | None = None,
            keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """The documents of `coll` whose `field` is one of `keys` (the strings among them).

    With a `range_limit` (the keys are contiguous in the caller's walk), one index
    range from the least key to the greatest is read first, and kept if it holds
    at most that many documents. Otherwise, with `narrowed` (filters on the
    index's next field, one range each: a hot key holds more documents than a
    batch wants; the projection must keep `_id`), the same key range once per
    filter; else one `$in`. Either is streamed through `keep`. Memory holds at
    most `range_limit` documents, or the matches (those `keep` keeps), either way.
    """
    wanted = {k for k in keys if isinstance(k, str)}
    if not wanted:
        return []
    projection = {**projection, field: 1} if projection else projection
    span = {field: {"$gte": min(wanted), "$lte": max(wanted)}}
    if range_limit is not None:
        ranged = list(coll.find(span, projection).limit(range_limit + 1))
        if len(ranged) <= range_limit:  # a server may put other types in a string range: keep the keys only
            return [doc for doc in ranged if isinstance(doc.get(field), str) and doc[field] in wanted]

    def kept(doc: dict[str, Any]) -> bool:
        return isinstance(doc.get(field), str) and doc[field] in wanted and (keep is None or keep(doc))

    if narrowed is None:
        return [doc for doc in coll.find({field: {"$in": list(wanted)}}, projection) if kept(doc)]
    # one flat query per filter (nx plans neither an `$or` nor an `$and` by index, and scans for an `$in`), and
    # each document once, by `_id`: a server may answer two filters with it (nx compares datetimes with strings)
    found: dict[str, dict[str, Any]] = {}
    for extra in narrowed:
        for doc in coll.find({**span, **extra}, projection):
            if kept(doc):
                found.setdefault(id_key(doc["_id"]), doc)
    return list(found.values())
