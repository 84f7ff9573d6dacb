"""The vocabulary shared by the engine, the CLI and the DAGs (docs/CONTRACT.md §3, §5, §7).

Nothing here names a relation: steps are registered (`linkage.steps`), and what
a run can be asked to do is `linkage.params.MigrationParams`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel


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
    """A one-off migration, or the nightly reconciliation of what is still unlinked."""

    MIGRATE = "migrate"
    RECONCILE = "reconcile"


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


#: States a run is never resumed from.
FINAL_STATES = frozenset({RunState.SUCCEEDED, RunState.ROLLED_BACK})


def empty_counts() -> dict[str, int]:
    """Every category at zero, so reports always show the full picture."""
    return dict.fromkeys(COUNT_KEYS, 0)


class Decision(BaseModel):
    """The verdict on one document, with what to write when it is `linked`.

    ``reason`` names the field at fault; it never holds the raw value, so review
    items and logs carry no PII. ``collection`` names the document's collection
    when it is not the pass's subject (a pair found from its customer side is
    reported on its user).
    """

    model_config = {"frozen": True, "arbitrary_types_allowed": True}

    oid: Any
    app_id: Any = None
    category: Category
    link: str | None = None
    reason: str | None = None
    collection: str | None = None
