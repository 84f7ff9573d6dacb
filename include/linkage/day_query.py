"""Which stored dates could be one of some days: a superset query, in index ranges, for `normalize_date`.

A hot customer's candidate orders cannot be read whole per batch (all its orders, every batch), and a
missed candidate would be a wrong link (a delivery linked to one order when it had two). So a batch
reads the orders whose `delivery_date` *could* normalise to one of its days, and keeps those that do:

- a BSON datetime is a UTC instant whose day is taken in the business timezone: the instants from
  the midnight there before the day before to the one after the day after (a day's margin each way,
  so no daylight-saving transition at midnight can narrow it);
- a string is read stripped, as `YYYY-MM-DD` or `YYYY-MM-DD[T ]HH:MM...` with an optional offset,
  which can move its day by one either way: the strings beginning with the day before, the day or
  the day after (`YYYY-MM-DD` strings sort as their days do), and every string beginning with
  whitespace (stripped first: any day at all), whichever whitespace `str.strip` removes.

Consecutive days are one range; more than `MAX_RUNS` runs of them are joined across their smallest
gaps: a wider read, never a narrower one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

#: Runs of consecutive days read as ranges of their own, at most (each is one range per type).
MAX_RUNS = 16
#: The characters `str.strip` removes (none is above U+3000), as ranges of consecutive code points.
_SPACES = [c for c in range(0x3001) if chr(c).isspace()]


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


_SPACE_RUNS = _runs(_SPACES, len(_SPACES))


def could_be_days(field: str, days: Iterable[date], tz: ZoneInfo) -> dict[str, Any]:
    """A filter matching every document whose `field` `normalize_date` reads as one of `days` (and others)."""
    runs = _runs((day.toordinal() for day in days), MAX_RUNS)
    if not runs:
        return {field: {"$in": []}}
    widened = [(max(first - 1, 1), last + 1) for first, last in runs]  # the day before and the day after
    instants = [_range(field, _midnight(first, tz), _midnight(last + 1, tz)) for first, last in widened]
    texts = [_range(field, _iso(first), _iso(last + 1)) for first, last in widened]
    padded = [_range(field, chr(first), chr(last + 1)) for first, last in _SPACE_RUNS]
    return {"$or": instants + texts + padded}
