"""Accepting the model's suggestions in bulk: every open item of a filter whose suggestion is at least so probable
becomes the decision its suggestion says (the candidate's id, or `none`), recorded as the person's.

They go through `linkage.review.intake.record_decisions` like any other decision: each checked against its item
and document as they are now, all recorded or none. One acceptance records at most `MAX_DECISIONS`; a
filter that holds more says so (`Accepted.left`), and accepting again takes the next ones. Each decision's
note says it was the suggestion accepted, with its probability and the fit it came from, for the auditor.
Nothing is written to the app: the decisions wait, as every decision does, for an approved run
(CONTRACT §3b). The view checks the count a person saw (`expected`): a filter that holds another number
since is refused (`CountChanged`), not accepted blind.
"""

from __future__ import annotations

from collections import Counter
from itertools import islice
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from linkage.core.errors import LinkageError
from linkage.core.evidence import NONE, Suggestion
from linkage.review.intake import MAX_DECISIONS, DecisionInput, Recorded, record_decisions
from linkage.review.pages import ReviewFilter
from linkage.store.review_key import counted
from linkage.store.review_queue import OPEN

if TYPE_CHECKING:
    from linkage.run.session import Linkage


class CountChanged(LinkageError):
    """The filter holds another number of items than the person was shown: nothing was recorded."""

    def __init__(self, expected: int, held: int) -> None:
        super().__init__(f"the filter holds {held:,} items now, not the {expected:,} shown: look again")
        self.expected, self.held = expected, held


class Acceptable(BaseModel):
    """What accepting a filter's suggestions would record: how many, by step, category and suggested kind
    (`link`, `none`), and the band of probabilities they have."""

    held: int
    taken: int
    by_step: dict[str, int]
    by_category: dict[str, int]
    by_kind: dict[str, int]
    lowest: float | None = None
    highest: float | None = None

    @property
    def left(self) -> int:
        """What one acceptance leaves of the filter (it takes at most `MAX_DECISIONS`)."""
        return self.held - self.taken


class Accepted(Recorded):
    """What was recorded, and how many items the filter held (more than recorded: accept again for the rest)."""

    held: int

    @property
    def left(self) -> int:
        return self.held - self.decided


def open_filter(selected: ReviewFilter, min_probability: float) -> ReviewFilter:
    """The open items of `selected` whose suggestion is at least `min_probability`."""
    return selected.model_copy(update={"status": OPEN, "min_probability": min_probability})


def holding(lk: Linkage, selected: ReviewFilter, min_probability: float) -> int:
    """How many open items of the filter have a suggestion at least `min_probability` (an index range count)."""
    chosen = open_filter(selected, min_probability)
    return counted(lk.reviews.coll, chosen.ranges(), where=chosen.where)


def _suggested(lk: Linkage, selected: ReviewFilter, min_probability: float) -> list[tuple[dict[str, Any], Suggestion]]:
    """The first `MAX_DECISIONS` of those items, in queue order, with their suggestions."""
    chosen = open_filter(selected, min_probability)
    items = islice(lk.reviews.items(chosen.ranges(), chosen.where), MAX_DECISIONS)
    return [(item, Suggestion.model_validate(item["suggestion"])) for item in items if item.get("suggestion")]


def preview(lk: Linkage, selected: ReviewFilter, min_probability: float) -> Acceptable:
    """What `accept_suggestions` would record now (it reads the items; it writes nothing)."""
    found = _suggested(lk, selected, min_probability)
    probabilities = [s.probability for _, s in found]
    return Acceptable(held=holding(lk, selected, min_probability), taken=len(found),
                      by_step=dict(Counter(item["step"] for item, _ in found)),
                      by_category=dict(Counter(item["category"] for item, _ in found)),
                      by_kind=dict(Counter("none" if s.target == NONE else "link" for _, s in found)),
                      lowest=min(probabilities, default=None), highest=max(probabilities, default=None))


def accept_suggestions(lk: Linkage, selected: ReviewFilter, min_probability: float, *, by: str, via: str,
                       expected: int | None = None) -> Accepted:
    """Record the suggestion of every open item of the filter at or above `min_probability` as `by`'s decision
    (at most `MAX_DECISIONS`; all of them or none: `DecisionsRefused`). With `expected`, the count the person
    was shown, a filter that holds another number is refused (`CountChanged`)."""
    held = holding(lk, selected, min_probability)
    if expected is not None and held != expected:
        raise CountChanged(expected, held)
    given = [DecisionInput(line=n, item_id=item["_id"], decision=s.target,
                           note=f"accepted the suggestion (p {s.probability:.3f}, model {s.model})")
             for n, (item, s) in enumerate(_suggested(lk, selected, min_probability), start=1)]
    return Accepted(**record_decisions(lk, given, by=by, via=via).model_dump(), held=held)
