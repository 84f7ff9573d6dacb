"""Counting documents through an index, on every server.

`count_documents` is an aggregation (`$match` then `$group`): MongoDB answers it from an index,
but the embedded server walks the whole table for it (3 s for 100,000 review items). The `count`
command with a query counts the index range on MongoDB (a COUNT_SCAN when the query is one
contiguous range of an index's keys) and is exact on a sharded cluster since 4.0; the embedded
server answers it from its index too. Every count a page shows goes through here.
"""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection


def count(coll: Collection, query: dict[str, Any]) -> int:
    """How many documents of `coll` match `query` (give it a query an index answers), read as `coll` is read (a
    bookkeeping collection's majority read concern, from the primary: `linkage.mongo.concerns`)."""
    command: dict[str, Any] = {"count": coll.name, "query": query}
    if coll.read_concern.level:
        command["readConcern"] = coll.read_concern.document
    return int(coll.database.command(command, read_preference=coll.read_preference)["n"])
