"""What the Linkage view draws of an item's evidence and suggestion (`linkage.core.evidence`), ready for its template.

- `evidence_table`: the item's document beside its candidates: a row per field (the document's own fact,
  then per candidate its value where the step shows one, and how it compares: equal, different, missing,
  similar with its score);
- `waterfall`: the suggestion's match weights as a Splink-style waterfall, drawn by the server as inline
  SVG (bars from the running total before each weight to the one after; the last bar the total), with the
  probability the total means.

Everything is text for the template to escape; nothing here is HTML.
"""

from __future__ import annotations

from typing import NamedTuple

from linkage.core.evidence import NONE, Suggestion
from linkage.review.pages import ReviewRow

#: The waterfall's geometry, in SVG user units: the label column, the bars' width, a row's height.
LABEL, BARS, VALUE, ROW = 150, 240, 56, 18
#: A compared field whose candidate's value the step shows under another name (a delivery's `day` is an
#: order's `delivery_date`).
ALIASES = {"day": "delivery_date"}


class Mark(NamedTuple):
    """One candidate's side of a field: its value where shown, and how it compares with the document's."""

    value: str
    level: str
    shown: str


class EvidenceRow(NamedTuple):
    field: str
    fact: str
    marks: list[Mark | None]


class EvidenceTable(NamedTuple):
    candidates: list[str]
    rows: list[EvidenceRow]
    suggested: str | None


def evidence_table(row: ReviewRow) -> EvidenceTable | None:
    """The item's evidence as a table (None before the `suggest` stage has looked at it)."""
    evidence = row.evidence
    if evidence is None:
        return None
    values = {c.id: c.facts for c in row.candidates}
    ids = [c.id for c in row.candidates] + [i for i in evidence.candidates if i not in values]
    compared = {i: {c.field: c for c in evidence.candidates.get(i, [])} for i in ids}
    aliased = set(ALIASES.values())
    fields = [*evidence.facts, *(f for i in ids for f in compared[i]),
              *(f for i in ids for f in values.get(i, {}) if f not in aliased)]
    rows = []
    for field in dict.fromkeys(fields):
        marks: list[Mark | None] = []
        for i in ids:
            c = compared[i].get(field)
            shown = values.get(i, {})
            value = shown.get(field) or shown.get(ALIASES.get(field, ""), "")
            marks.append(Mark(value, c.level.value, c.shown.removeprefix(f"{c.field} ")) if c else
                         Mark(value, "", "") if value else None)
        rows.append(EvidenceRow(field, evidence.facts.get(field, ""), marks))
    suggested = row.suggestion.target if row.suggestion else None
    return EvidenceTable(ids, rows, suggested)


class Bar(NamedTuple):
    label: str
    weight: float
    x: float
    width: float
    y: float
    kind: str


class Waterfall(NamedTuple):
    bars: list[Bar]
    width: int
    height: int
    zero: float
    label: int
    value_x: int
    total: float
    probability: float
    target: str


def waterfall(suggestion: Suggestion | None) -> Waterfall | None:
    """The suggestion's weights as bars: each from the running total before it to the one after (`up`, `down`),
    then the total from 0 (`total`); None without a suggestion or weights."""
    if suggestion is None or not suggestion.weights:
        return None
    steps, running = [], 0.0
    for w in suggestion.weights:
        steps.append((f"{w.field} {w.level}".strip(), w.weight, running, running + w.weight))
        running += w.weight
    ends = [0.0, *(v for _, _, a, b in steps for v in (a, b))]
    low, span = min(ends), (max(ends) - min(ends)) or 1.0

    def x(value: float) -> float:
        return round(LABEL + (value - low) / span * BARS, 1)
    bars = [Bar(label, weight, min(x(a), x(b)), max(1.0, round(abs(x(b) - x(a)), 1)), n * ROW,
                "up" if weight >= 0 else "down") for n, (label, weight, a, b) in enumerate(steps)]
    bars.append(Bar("total", running, min(x(0), x(running)), max(1.0, round(abs(x(running) - x(0)), 1)),
                    len(steps) * ROW, "total"))
    return Waterfall(bars, LABEL + BARS + VALUE, (len(bars)) * ROW + 4, x(0), LABEL, LABEL + BARS + 6, running,
                     suggestion.probability, "none: leave it unlinked" if suggestion.target == NONE else
                     suggestion.target)
