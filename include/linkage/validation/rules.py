"""The expectations of CONTRACT §6, defined once: what each checks and how it is judged.

`integrity` rules fail a run for a violation in a document the run wrote (and
report the others as drift); `coverage` rules compare a ratio with the run's
threshold; `lost` (documents the run backed up that no longer exist) can only
be drift, since linkage never deletes a document.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from linkage.models import MigrationParams, Step

RUN_SUITE, DRIFT_SUITE = "linkage_run", "linkage_drift"


class Rule(BaseModel):
    name: str
    step: Step | None
    description: str
    kind: Literal["integrity", "coverage", "lost"]
    parameter: str | None = None  # the threshold's name in MigrationParams.thresholds

    def threshold(self, params: MigrationParams) -> str:
        if self.kind == "coverage":
            assert self.parameter is not None
            return f">= {params.thresholds[self.parameter]}"
        return "<= 0"

    @property
    def judges_the_run(self) -> bool:
        return self.kind != "lost"


OD, UC = Step.ORDER_DELIVERY, Step.USER_CUSTOMER
RULES = [
    Rule(name="order_refs_dangling", step=OD, kind="integrity",
         description="every set delivery_statuses.order_id names an existing order"),
    Rule(name="order_links_not_single", step=OD, kind="integrity",
         description="each delivery links to one order: a set order_id is a single string"),
    Rule(name="order_coverage", step=OD, kind="coverage", parameter="min_order_coverage",
         description="share of delivery statuses linked to an order"),
    Rule(name="user_refs_dangling", step=UC, kind="integrity",
         description="every set users.customer_v2_id names an existing customer"),
    Rule(name="customer_refs_dangling", step=UC, kind="integrity",
         description="every set customers_v2.user_id names an existing user"),
    Rule(name="user_link_duplicates", step=UC, kind="integrity",
         description="no two users share a customer_v2_id"),
    Rule(name="customer_link_duplicates", step=UC, kind="integrity",
         description="no two customers share a user_id"),
    Rule(name="links_disagree", step=UC, kind="integrity",
         description="both sides of each user-customer link name each other"),
    Rule(name="user_coverage", step=UC, kind="coverage", parameter="min_user_coverage",
         description="share of customer accounts linked to a customer profile"),
    Rule(name="documents_lost", step=None, kind="lost",
         description="every document in the run's backup still exists"),
]
