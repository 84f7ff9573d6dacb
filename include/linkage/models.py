"""The vocabulary shared by the engine, the CLI and the DAGs (SPEC §3, §5)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Category(StrEnum):
    """What the linking rules decided for one document."""

    LINKED = "linked"
    AMBIGUOUS = "ambiguous"
    CONFLICT = "conflict"
    UNMATCHED = "unmatched"
    INVALID = "invalid"
    ALREADY_LINKED = "already_linked"
    DANGLING = "dangling"
    ONE_SIDED = "one_sided"


#: Categories that leave a document for a person to look at.
REVIEW_CATEGORIES = frozenset(
    {Category.AMBIGUOUS, Category.CONFLICT, Category.UNMATCHED, Category.DANGLING,
     Category.ONE_SIDED, Category.INVALID}
)


class Step(StrEnum):
    """The migrations, by the names their counts are reported under."""

    ORDER_DELIVERY = "order_delivery"
    USER_CUSTOMER = "user_customer"


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


FINAL_STATES = frozenset({RunState.SUCCEEDED, RunState.ROLLED_BACK})


def empty_counts() -> dict[str, int]:
    """Every category at zero, so reports always show the full picture."""
    return {category.value: 0 for category in Category}




class Decision(BaseModel):
    """The verdict on one document, with what to write when it is `linked`.

    ``reason`` names the field at fault for `invalid` documents; it never holds
    the raw value, so review items and logs carry no PII.
    """

    model_config = {"frozen": True, "arbitrary_types_allowed": True}

    oid: Any
    app_id: Any = None
    category: Category
    link: str | None = None
    reason: str | None = None


class MigrationParams(BaseModel):
    """What a run was asked to do; stored with the run and echoed in reports."""

    steps: list[Step] = Field(default_factory=lambda: list(Step))
    dry_run: bool = False
    batch_size: int = Field(default=1000, ge=1, le=50_000)
    partitions: int = Field(default=2, ge=1, le=64)
    rollback_on_failure: bool = True
    min_order_coverage: float = Field(default=0.8, ge=0.0, le=1.0)
    min_user_coverage: float = Field(default=0.8, ge=0.0, le=1.0)
