"""Partitions: contiguous ranges of a pass's walk key, so an orchestrator can fan one pass out.

A run cuts each phase's source once and stores the cut with the run, so a
retried or resumed partition works the same range.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pymongo.collection import Collection

ID = "_id"


class Partition(BaseModel):
    """A range of a pass's walk key: (lo, hi], open where None."""

    index: int = 0
    lo: Any = None
    hi: Any = None

    model_config = {"arbitrary_types_allowed": True}

    def bounds(self, walk: str = ID, after: Any = None) -> dict[str, Any]:
        start = after if after is not None else self.lo
        bound: dict[str, Any] = {}
        if start is not None:
            bound["$gt"] = start
        if self.hi is not None:
            bound["$lte"] = self.hi
        return {walk: bound} if bound else {}


def split(source: Collection, query: dict[str, Any], parts: int, walk: str = ID) -> list[Partition]:
    """Cut a source into `parts` contiguous ranges of its walk key, of about equal size.

    A cut falls between two keys, so equal keys (one customer's documents) always
    share a partition.
    """
    if parts <= 1:
        return [Partition()]
    total = source.count_documents(query)
    parts = max(1, min(parts, total or 1))
    cuts: list[Any] = []
    for k in range(1, parts):
        doc = next(source.find(query, {walk: 1}).sort(walk, 1).skip(k * total // parts - 1).limit(1), None)
        key = None if doc is None else doc.get(walk)
        if key is not None and (walk == ID or isinstance(key, str)) and (not cuts or key != cuts[-1]):
            cuts.append(key)
    edges = [None, *cuts, None]
    return [Partition(index=i, lo=edges[i], hi=edges[i + 1]) for i in range(len(edges) - 1)]
