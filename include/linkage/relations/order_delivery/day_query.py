"""Which stored dates could be one of some days: a superset query, in index ranges, for `normalize_date`.

A hot customer's candidate orders cannot be read whole per batch (all its orders, every batch), and a
missed candidate would be a wrong link (a delivery linked to one order when it had two). So a batch
reads the orders whose `delivery_date` *could* normalise to one of its days, and keeps those that do:

- a BSON datetime is a UTC instant whose day is taken in the business timezone: the instants from
  the midnight there that starts the day before to the one that ends the day after (a day's margin
  each way, so no daylight-saving transition at midnight can narrow it);
- a string is read stripped, as `YYYY-MM-DD` or `YYYY-MM-DD[T ]HH:MM...` with an optional offset,
  which can move its day by one either way: the strings beginning with the day before, the day or
  the day after (`YYYY-MM-DD` strings sort as their days do), and every string beginning with
  whitespace (stripped first: any day at all), whichever whitespace `str.strip` removes.

The days, widened by one each way, make runs of consecutive days, one range each; more than
`MAX_RUNS` runs are joined across their smallest gaps: a wider read, never a narrower one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

#: Runs of consecutive days read as ranges of their own, at most (each is one read per type).
MAX_RUNS = 8
#: Where every character `str.strip` removes lies (tab to space, and U+0085 to U+3000, none above): the
#: strings led by one, in two reads that miss the digits (`tests/integration/test_hot_keys.py` checks them).
SPACE_LEADS = (("\t", "!"), ("\x85", "\u3001"))


def _runs(points: Iterable[int], most: int) -> list[tuple[int, int]]:
    """Sorted integers as (first, last) runs of consecutive ones, joined across the smallest gaps to `most`."""
    ordered = sorted(set(points))
    runs: list[tuple[int, int]] = []
    for point in ordered:
        if runs and point == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], point)
        else:
            runs.append((point, point))
    if len(runs) > most:
        joined = set(sorted(range(1, len(runs)), key=lambda i: runs[i][0] - runs[i - 1][1])[:len(runs) - most])
        starts = [i for i in range(len(runs)) if i not in joined]
        ends = [*starts[1:], len(runs)]
        runs = [(runs[start][0], runs[end - 1][1]) for start, end in zip(starts, ends, strict=True)]
    return runs


def _iso(ordinal: int) -> str:
    """A day as its `YYYY-MM-DD` text; past the last day, the first text above every digit-led one."""
    return date.fromordinal(ordinal).isoformat() if ordinal <= date.max.toordinal() else ":"


def _midnight(ordinal: int, tz: ZoneInfo) -> datetime | None:
    return datetime.combine(date.fromordinal(ordinal), time(), tzinfo=tz) if ordinal <= date.max.toordinal() \
        else None


def _range(field: str, low: Any, high: Any) -> dict[str, Any]:
    return {field: {"$gte": low, **({"$lt": high} if high is not None else {})}}


def could_be_days(field: str, days: Iterable[date], tz: ZoneInfo) -> list[dict[str, Any]]:
    """Filters, each one range of `field`, that together match every document whose `field`
    `normalize_date` reads as one of `days` (and others): each is read as a query of its own, since a
    server that cannot plan an `$or` by index (nx) would scan the collection for one. Disjoint on
    MongoDB; nx compares a datetime with strings too, so a reader drops what it already has."""
    runs = _runs((day.toordinal() + shift for day in days for shift in (-1, 0, 1)), MAX_RUNS)
    runs = [(max(first, 1), last) for first, last in runs]
    instants = [_range(field, _midnight(first, tz), _midnight(last + 1, tz)) for first, last in runs]
    texts = [_range(field, _iso(first), _iso(last + 1)) for first, last in runs]
    padded = [_range(field, low, high) for low, high in SPACE_LEADS] if runs else []
    return instants + texts + padded
