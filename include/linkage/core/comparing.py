"""Comparing a review item's document with its candidates, field by field: the evidence a person (and the
suggestion model, `linkage.review.suggestion_model`) decides by.

A step registers a `Comparator` per collection its review items are about (`StepSpec.comparators`): which
collection the candidates come from, the document's own facts (never a phone or an email), and per
candidate a `Comparison` per compared field, each with its `Level` (`linkage.core.evidence`). Each compared
field also says what its levels mean before any data is seen (`FieldSpec`: the prior m and u
probabilities of the Fellegi-Sunter model). The helpers here say how two values compare without naming a
relation: exactly (`equal_level`), or as names (`name_level`, Jaro-Winkler).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from linkage.core.evidence import Comparison, Level
from linkage.core.mask import redact

#: Names at least this similar (Jaro-Winkler), and not equal, are `similar`.
SIMILAR_NAMES = 0.88
FACT_CHARS = 64
Doc = Mapping[str, Any]


@dataclass(frozen=True)
class FieldSpec:
    """A compared field and what its levels say before the data is seen: the probability of each level among
    matching pairs (`m`) and among pairs that do not match (`u`)."""

    name: str
    m: Mapping[Level, float]
    u: Mapping[Level, float]

    @property
    def levels(self) -> tuple[Level, ...]:
        return tuple(self.m)


@dataclass(frozen=True)
class Comparator:
    """How a step's review items about `collection` are compared with their candidates (documents of `target`,
    named by their `key`): the document's facts, and per candidate its comparisons, one per field of
    `fields`, in that order."""

    collection: str
    target: str
    fields: tuple[FieldSpec, ...]
    facts: Callable[[Doc, ZoneInfo], dict[str, str]]
    compare: Callable[[Doc, Doc, ZoneInfo], list[Comparison]]
    key: str = "id"

    def levels(self, comparisons: list[Comparison]) -> tuple[Level, ...]:
        """The comparisons as a vector of levels in the order of `fields` (a field not compared is missing)."""
        found = {c.field: c.level for c in comparisons}
        return tuple(found.get(f.name, Level.MISSING) for f in self.fields)


def fact(value: Any, tz: ZoneInfo | None = None) -> str | None:
    """A fact as a person reads it: times to the minute (in `tz`, else UTC), days as ISO, text masked and short."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        zone = tz or timezone.utc
        return f"{aware.astimezone(zone):%Y-%m-%d %H:%M} {zone}"
    if isinstance(value, date):
        return value.isoformat()
    return redact(str(value))[:FACT_CHARS]


def facts(**values: Any) -> dict[str, str]:
    """The facts that have a value."""
    return {name: text for name, text in values.items() if text is not None}


def equal_level(field: str, mine: Any, theirs: Any) -> Comparison:
    """Two (normalised) values compared exactly; either unset is `missing`."""
    if mine is None or theirs is None or mine == "" or theirs == "":
        return Comparison(field=field, level=Level.MISSING)
    return Comparison(field=field, level=Level.EQUAL if mine == theirs else Level.DIFFERENT)


def name_key(value: Any) -> str | None:
    """A name as compared: words case-folded, single spaces."""
    return " ".join(value.casefold().split()) or None if isinstance(value, str) else None


def name_level(field: str, mine: Any, theirs: Any) -> Comparison:
    """Two names: equal, similar (with their Jaro-Winkler similarity), different or missing."""
    a, b = name_key(mine), name_key(theirs)
    if a is None or b is None:
        return Comparison(field=field, level=Level.MISSING)
    if a == b:
        return Comparison(field=field, level=Level.EQUAL)
    score = jaro_winkler(a, b)
    if score >= SIMILAR_NAMES:
        return Comparison(field=field, level=Level.SIMILAR, score=round(score, 3))
    return Comparison(field=field, level=Level.DIFFERENT, score=round(score, 3))


def jaro_winkler(a: str, b: str, prefix_scale: float = 0.1) -> float:
    """The Jaro-Winkler similarity of two strings (1 is equal, 0 nothing in common)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    window = max(0, max(len(a), len(b)) // 2 - 1)
    taken = [False] * len(b)
    matched_a = []
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not taken[j] and b[j] == ch:
                taken[j] = True
                matched_a.append(ch)
                break
    if not matched_a:
        return 0.0
    matched_b = [b[j] for j in range(len(b)) if taken[j]]
    transpositions = sum(x != y for x, y in zip(matched_a, matched_b, strict=True)) / 2
    n = len(matched_a)
    jaro = (n / len(a) + n / len(b) + (n - transpositions) / n) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * prefix_scale * (1 - jaro)
