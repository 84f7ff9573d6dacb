"""The review queue's one ordered key: pages by index and counts that do not scan, at any size of queue.

Every item carries `queue` = `status|step|category|item id`, indexed. Any filter a person can
ask for (a status, a step, a category, each or any) is a few prefix ranges of that one field, so
a count is an index range count (`linkage.mongo.counting`) and a page is the next `size` keys after
the last one shown (keyset paging: never a `skip` over what came before). The embedded server
answers a range on an indexed field from its index too, but not a compound index, nor a range
on `_id`; one single-field key works on both. A filter on another field (the suggestion's
probability, `suggested_p`) is a condition beside the ranges: it narrows what the ranges hold.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection

from linkage.mongo.counting import count

SEP = "|"
FIELD = "queue"
#: Items read from the database at a time when a whole selection is walked (the CSV export).
WALK_BATCH = 1000
#: A condition on other fields beside the key's ranges (a minimum suggested probability): the server walks the
#: ranges' index entries and tests it on each.
Where = dict[str, Any] | None


def queue_key(status: str, step: str, category: str, item_id: str) -> str:
    return SEP.join((status, step, category, item_id))


class Bounds(NamedTuple):
    """Keys from `low` (inclusive) to `high` (exclusive; None: no end)."""

    low: str
    high: str | None


def prefix_bounds(prefix: str) -> Bounds:
    """Every key starting with `prefix` (which ends in the separator): up to the next character after it."""
    return Bounds(prefix, prefix[:-1] + chr(ord(SEP) + 1)) if prefix else Bounds("", None)


def selection(levels: Sequence[tuple[str | None, Sequence[str]]]) -> list[Bounds]:
    """The ranges of keys a filter selects, in key order.

    `levels` are (the value asked for or None for any, every value the level takes), in key order.
    A level left at "any" with only "any" after it ends the prefix; one followed by a chosen value
    is spelt out over its values.
    """
    prefixes = [""]
    for depth, (chosen, values) in enumerate(levels):
        if chosen is None and all(later is None for later, _ in levels[depth:]):
            break
        options = [chosen] if chosen is not None else list(values)
        prefixes = [f"{prefix}{option}{SEP}" for prefix in prefixes for option in options]
    return sorted(prefix_bounds(prefix) for prefix in prefixes)


def within(bounds: Bounds, *, after: str | None = None, before: str | None = None,
           where: Where = None) -> dict[str, Any]:
    """The query for a range of keys (after `after`, before `before`), and `where` besides."""
    low = {"$gt": after} if after is not None and after >= bounds.low else {"$gte": bounds.low}
    highs = [h for h in (bounds.high, before) if h is not None]
    return {FIELD: {**low, **({"$lt": min(highs)} if highs else {})}, **(where or {})}


def counted(coll: Collection, ranges: Sequence[Bounds], *, before: str | None = None, where: Where = None) -> int:
    """Items in the ranges (those whose key is before `before`, when given; those `where` selects)."""
    return sum(count(coll, within(b, before=before, where=where)) for b in ranges if before is None or b.low < before)


def page_after(coll: Collection, ranges: Sequence[Bounds], after: str | None, limit: int,
               where: Where = None) -> list[dict[str, Any]]:
    """The first `limit` items whose key is after `after` (from the start when None)."""
    found: list[dict[str, Any]] = []
    for bounds in ranges:
        if len(found) >= limit or (after is not None and bounds.high is not None and bounds.high <= after):
            continue
        found += coll.find(within(bounds, after=after, where=where)).sort(FIELD, ASCENDING).limit(limit - len(found))
    return found


def page_before(coll: Collection, ranges: Sequence[Bounds], before: str, limit: int,
                where: Where = None) -> list[dict[str, Any]]:
    """The last `limit` items whose key is before `before`, in key order."""
    found: list[dict[str, Any]] = []
    for bounds in reversed(ranges):
        if len(found) >= limit or bounds.low >= before:
            continue
        found += coll.find(within(bounds, before=before, where=where)).sort(FIELD, DESCENDING).limit(
            limit - len(found))
    return found[::-1]


def walk(coll: Collection, ranges: Sequence[Bounds], where: Where = None) -> Iterator[dict[str, Any]]:
    """Every item in the ranges (that `where` selects), in key order, a page at a time (memory holds one page)."""
    after: str | None = None
    while page := page_after(coll, ranges, after, WALK_BATCH, where):
        yield from page
        after = page[-1][FIELD]
