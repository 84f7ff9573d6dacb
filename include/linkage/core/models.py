"""The vocabulary shared by the engine, the CLI and the DAGs (docs/CONTRACT.md §3, §5, §7).

Nothing here names a relation: steps are registered (`linkage.relations`), and what
a run can be asked to do is `linkage.run.params.MigrationParams`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from linkage.core.mask import redact


class Category(StrEnum):
    """What the linking rules decided for one document; the order is the report's."""

    LINKED = "linked"
    AMBIGUOUS = "ambiguous"
    CONFLICT = "conflict"
    UNMATCHED = "unmatched"
    INVALID = "invalid"
    ALREADY_LINKED = "already_linked"
    DANGLING = "dangling"
    ONE_SIDED = "one_sided"


#: The categories in report order (`--json`, alerts, `linkage status`).
COUNT_KEYS = [category.value for category in Category]

#: Categories that leave a document for a person to look at.
REVIEW_CATEGORIES = frozenset(
    {Category.AMBIGUOUS, Category.CONFLICT, Category.UNMATCHED, Category.DANGLING,
     Category.ONE_SIDED, Category.INVALID}
)


class RunKind(StrEnum):
    """A one-off migration, the nightly reconciliation of what is still unlinked, or people's decisions on
    review items carried out (`linkage_apply_decisions`, `linkage apply-decisions`)."""

    MIGRATE = "migrate"
    RECONCILE = "reconcile"
    DECISIONS = "decisions"


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    #: A decisions run whose approval was refused (or timed out): it wrote nothing.
    REJECTED = "rejected"


#: States a run is never resumed from.
FINAL_STATES = frozenset({RunState.SUCCEEDED, RunState.ROLLED_BACK, RunState.REJECTED})


def empty_counts() -> dict[str, int]:
    """Every category at zero, so reports always show the full picture."""
    return dict.fromkeys(COUNT_KEYS, 0)


#: The most candidates a review item lists; how many more there are is counted beside them.
CANDIDATE_CAP = 20
#: The longest fact a candidate shows (app data is written by strangers: a fact is never a paragraph).
FACT_CHARS = 64


def _fact(value: Any) -> str | None:
    """A candidate's attribute as a person reads it: times to the minute in UTC, days as ISO, text masked."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return f"{aware.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    if isinstance(value, date):
        return value.isoformat()
    return redact(str(value))[:FACT_CHARS]


class Candidate(BaseModel):
    """A document a review item's document could be linked to, and what a person decides by.

    The step says which attributes (`facts`) it shows; none is a phone or an email (a phone shows
    its last two digits at most), and every value is masked and cut short on the way in.
    """

    model_config = {"frozen": True}

    id: str
    facts: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, id: str, **facts: Any) -> Candidate:
        shown = {name: _fact(value) for name, value in facts.items()}
        return cls(id=id, facts={name: text for name, text in shown.items() if text is not None})


class Ref(BaseModel):
    """A document by its collection and application id: who holds the other side of a pair."""

    model_config = {"frozen": True}

    collection: str
    id: str


def listed(candidates: Iterable[Candidate]) -> dict[str, Any]:
    """A decision's `candidates` (the first `CANDIDATE_CAP`) and `more_candidates` (how many were left off)."""
    found = list(candidates)
    return {"candidates": tuple(found[:CANDIDATE_CAP]), "more_candidates": max(0, len(found) - CANDIDATE_CAP)}


class Ruling(BaseModel):
    """The verdict on one document, with what to write when it is `linked`, and what a person needs to
    decide it when the rules could not.

    ``reason`` starts with the field at fault (`field: why`); it never holds a raw value, so review
    items and logs carry no PII. ``collection`` names the document's collection when it is not the
    pass's subject (a pair found from its customer side is reported on its user). ``candidates`` are
    the documents it could be linked to (ambiguous and conflict), ``holders`` who holds the other side
    (one-sided and conflict), ``missing`` the id a dangling link names.
    """

    model_config = {"frozen": True, "arbitrary_types_allowed": True}

    oid: Any
    app_id: Any = None
    category: Category
    link: str | None = None
    reason: str | None = None
    collection: str | None = None
    candidates: tuple[Candidate, ...] = ()
    more_candidates: int = 0
    holders: tuple[Ref, ...] = ()
    missing: str | None = None

    @property
    def field(self) -> str | None:
        """The field at fault, as the reason names it."""
        return self.reason.partition(":")[0] if self.reason and ":" in self.reason else None
