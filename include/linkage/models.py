"""The vocabulary shared by the engine, the CLI and the DAGs (docs/CONTRACT.md §3, §5, §7).

`MigrationParams` is the single source of what a run can be asked to do: its
field titles, descriptions and limits are what the CLI's help and the DAGs'
Params forms show.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


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


class Step(StrEnum):
    """The migrations, by the names their counts are reported under."""

    ORDER_DELIVERY = "order_delivery"
    USER_CUSTOMER = "user_customer"


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


class MigrationParams(BaseModel):
    """What a run was asked to do; stored with the run and echoed in reports."""

    steps: list[Step] = Field(default_factory=lambda: list(Step), title="Migrations to run",
                              description="order_delivery (002: delivery_statuses.order_id) and/or "
                                          "user_customer (003: users.customer_v2_id <-> customers_v2.user_id).")
    dry_run: bool = Field(default=False, title="Dry run",
                          description="Compute and record every count and the drift found; write nothing "
                                      "to the app's collections or the review queue.")
    batch_size: int = Field(default=1000, ge=1, le=50_000, title="Batch size",
                            description="Documents per journaled batch (one bulk write each).")
    partitions: int = Field(default=1, ge=1, le=64, title="Partitions",
                            description="Key ranges per backfill phase, worked at once "
                                        "(one mapped task instance each in Airflow).")
    rollback_on_failure: bool = Field(default=True, title="Roll back on failed validation",
                                      description="Undo the run through its journal when a document it wrote "
                                                  "breaks an expectation or coverage is below the threshold.")
    min_order_coverage: float = Field(default=0.8, ge=0.0, le=1.0, title="Minimum order-link coverage",
                                      description="Share of delivery statuses that must carry an order_id "
                                                  "after the run.")
    min_user_coverage: float = Field(default=0.8, ge=0.0, le=1.0, title="Minimum user-link coverage",
                                     description="Share of customer accounts that must carry a customer_v2_id "
                                                 "after the run.")

    @property
    def thresholds(self) -> dict[str, float]:
        """The coverage thresholds, by the name the expectations refer to them."""
        return {"min_order_coverage": self.min_order_coverage, "min_user_coverage": self.min_user_coverage}
