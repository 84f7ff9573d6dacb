"""Partitions: contiguous ranges of a pass's walk key, so an orchestrator can fan one pass out.

A run cuts each phase's source once and stores the cut with the run, so a
retried or resumed partition works the same range.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from bson import Decimal128, ObjectId, Regex, Timestamp
from pydantic import BaseModel
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

ID = "_id"


#: The BSON types an `_id` can hold, in MongoDB's sort order, as `$type` aliases (no minKey, maxKey or
#: symbol: FerretDB knows no such alias, and no app stores one as an id).
_SORT_ORDER = (("null",), ("double", "int", "long", "decimal"), ("string",), ("object",), ("array",),
               ("binData",), ("objectId",), ("bool",), ("date",), ("timestamp",), ("regex",))
#: The Python types pymongo hands each as, and their place in that order (bool first: a bool is an int; Int64
#: is an int and Binary a bytes).
_PLACES: tuple[tuple[type | tuple[type, ...], int], ...] = (
    (bool, 7), (type(None), 0), ((int, float, Decimal128), 1), (str, 2), (dict, 3), (list, 4), (bytes, 5),
    (ObjectId, 6), (datetime, 8), (Timestamp, 9), ((Regex, re.Pattern), 10))


def _types_after(value: Any) -> list[str]:
    """The `$type` aliases of the BSON types MongoDB sorts after `value`'s type."""
    place = next(place for kinds, place in _PLACES if isinstance(value, kinds))
    return [alias for aliases in _SORT_ORDER[place + 1:] for alias in aliases]


def sorts_after(field: str, value: Any) -> dict[str, Any]:
    """The documents whose `field` sorts after `value`: greater within its type (`$gt` is type-bracketed), or
    of a type sorted after it, so a keyset resumed on a field of mixed types skips no document (one `$type`
    each: the embedded server refuses a list of them)."""
    return {"$or": [{field: {"$gt": value}}, *({field: {"$type": alias}} for alias in _types_after(value))]}


class Partition(BaseModel):
    """A range of a pass's walk key: (lo, hi], open where None."""

    index: int = 0
    lo: Any = None
    hi: Any = None

    model_config = {"arbitrary_types_allowed": True}

    def bounds(self, walk: str = ID, after: Any = None, tiebreak: str | None = None) -> dict[str, Any]:
        """The partition's range, from just after `after` when resuming.

        With a `tiebreak` the walk is (walk, tiebreak) and `after` the pair [key, tiebreak value] a batch
        ended on (inside a key, maybe): the rest of that key past it, then the keys after it. A plain
        `after` is a whole key done (what a walk without a tiebreak checkpoints)."""
        if tiebreak is not None and isinstance(after, list):
            key, last = after
            rest = {"$or": [{walk: {"$gt": key}}, {"$and": [{walk: key}, sorts_after(tiebreak, last)]}]}
            return {"$and": [{walk: {"$lte": self.hi}}, rest]} if self.hi is not None else rest
        start = after if after is not None else self.lo
        bound: dict[str, Any] = {}
        if start is not None:
            bound["$gt"] = start
        if self.hi is not None:
            bound["$lte"] = self.hi
        return {walk: bound} if bound else {}


def _bucket_cuts(source: Collection, query: dict[str, Any], parts: int, walk: str) -> list[Any] | None:
    """Cut points from the server's `$bucketAuto` (MongoDB and mongos answer it from the walk key's index, with
    no `skip` across shards); None where the server refuses it or answers in another shape (FerretDB 1.24)."""
    try:
        buckets = list(source.aggregate([{"$match": query}, {"$bucketAuto": {"groupBy": f"${walk}",
                                                                               "buckets": parts}}]))
    except OperationFailure:
        return None
    if not all(isinstance(b.get("_id"), dict) and "max" in b["_id"] for b in buckets):
        return None
    return [b["_id"]["max"] for b in buckets[:-1]]


def _walked_cuts(source: Collection, query: dict[str, Any], parts: int, walk: str) -> list[Any]:
    """Cut points from one streamed read of the walk key alone (constant memory; no `skip`, which through mongos
    reads every skipped document on every shard and times out at 100M documents)."""
    total = source.count_documents(query)
    wanted = {k * total // parts for k in range(1, parts)} - {0}
    cuts: list[Any] = []
    projection = {walk: 1} if walk == ID else {walk: 1, ID: 0}
    for position, doc in enumerate(source.find(query, projection).sort(walk, 1).batch_size(10_000), start=1):
        if len(cuts) == len(wanted):
            break
        if position in wanted:
            cuts.append(doc.get(walk))
    return cuts


def split(source: Collection, query: dict[str, Any], parts: int, walk: str = ID) -> list[Partition]:
    """Cut a source into `parts` contiguous ranges of its walk key, of about equal size.

    A cut falls between two keys, so equal keys (one customer's documents) always
    share a partition.
    """
    if parts <= 1:
        return [Partition()]
    found = _bucket_cuts(source, query, parts, walk)
    if found is None:
        found = _walked_cuts(source, query, parts, walk)
    cuts: list[Any] = []
    for key in found:
        if key is not None and (walk == ID or isinstance(key, str)) and (not cuts or key != cuts[-1]):
            cuts.append(key)
    edges = [None, *cuts, None]
    return [Partition(index=i, lo=edges[i], hi=edges[i + 1]) for i in range(len(edges) - 1)]
