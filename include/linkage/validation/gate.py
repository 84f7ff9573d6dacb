"""Great Expectations as the gate: one expectation per metric, thresholds from the run.

GX gets one row of observations (computed by `metrics`) and validates it through a
Checkpoint whose UpdateDataDocsAction writes the run's Data Docs. GX is imported
here only, and only when validation runs: it is slow to import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel

from linkage.models import MigrationParams
from linkage.validation.metrics import Metric

log = logging.getLogger("linkage.validation")
SUITE = "linkage_links"


class Rule(BaseModel):
    metric: str
    suite: str
    description: str
    min_value: float | None = None
    max_value: float | None = None

    @property
    def threshold(self) -> str:
        return f">= {self.min_value}" if self.min_value is not None else f"<= {self.max_value}"


def rules(params: MigrationParams) -> list[Rule]:
    """The expectations of SPEC §6, with the run's coverage thresholds."""
    od, uc = "order_delivery", "user_customer"
    return [
        Rule(metric="order_refs_dangling", suite=od, max_value=0,
             description="every set delivery_statuses.order_id names an existing order"),
        Rule(metric="order_links_not_single", suite=od, max_value=0,
             description="each delivery links to one order: a set order_id is a single string"),
        Rule(metric="order_coverage", suite=od, min_value=params.min_order_coverage,
             description="share of delivery statuses linked to an order"),
        Rule(metric="user_refs_dangling", suite=uc, max_value=0,
             description="every set users.customer_v2_id names an existing customer"),
        Rule(metric="customer_refs_dangling", suite=uc, max_value=0,
             description="every set customers_v2.user_id names an existing user"),
        Rule(metric="user_link_duplicates", suite=uc, max_value=0,
             description="no two users share a customer_v2_id"),
        Rule(metric="customer_link_duplicates", suite=uc, max_value=0,
             description="no two customers share a user_id"),
        Rule(metric="links_disagree", suite=uc, max_value=0,
             description="both sides of each user-customer link name each other"),
        Rule(metric="user_coverage", suite=uc, min_value=params.min_user_coverage,
             description="share of customer accounts linked to a customer profile"),
        Rule(metric="documents_lost", suite="counts", max_value=0,
             description="every document in the run's backup still exists"),
    ]


class ExpectationOutcome(BaseModel):
    name: str
    suite: str
    description: str
    success: bool
    observed: float | None
    threshold: str
    examples: list[str] = []
    note: str | None = None


class ValidationOutcome(BaseModel):
    success: bool
    expectations: list[ExpectationOutcome]
    data_docs: str | None = None

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if not e.success]


def _run_gx(checked: list[Rule], observed: dict[str, float], docs_dir: Path, run_name: str) -> tuple[dict[str, bool], str | None]:
    """Validate the observations with GX; returns success per metric and the Data Docs index."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(docs_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset_name = "observations"
    source = context.data_sources.add_or_update_pandas("linkage")
    asset = next((a for a in source.assets if a.name == asset_name), None) or source.add_dataframe_asset(name=asset_name)
    batch = next((b for b in asset.batch_definitions if b.name == "run"), None) or asset.add_batch_definition_whole_dataframe("run")
    suite = gx.ExpectationSuite(name=SUITE)
    for rule in checked:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
            column=rule.metric, min_value=rule.min_value, max_value=rule.max_value,
            description=f"[{rule.suite}] {rule.description}"))
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(gx.ValidationDefinition(name=SUITE, data=batch, suite=suite))
    checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
        name=SUITE, validation_definitions=[definition], actions=[UpdateDataDocsAction(name="data_docs")],
        result_format="SUMMARY"))
    result = checkpoint.run(batch_parameters={"dataframe": pd.DataFrame([observed])},
                            run_id=RunIdentifier(run_name=run_name))
    success = {}
    for run_result in result.run_results.values():
        for r in run_result.results:
            success[r.expectation_config.kwargs["column"]] = bool(r.success)
    sites = context.get_docs_sites_urls()
    return success, sites[0]["site_url"] if sites else None


def validate(measured: dict[str, Metric], params: MigrationParams, docs_dir: Path, run_name: str) -> ValidationOutcome:
    """Judge the measured metrics; a metric that could not be measured is reported, not failed."""
    checked = [r for r in rules(params) if measured[r.metric].value is not None]
    observed = {r.metric: measured[r.metric].value for r in checked}
    success, docs = _run_gx(checked, observed, docs_dir, run_name)
    expectations = [ExpectationOutcome(
        name=r.metric, suite=r.suite, description=r.description, threshold=r.threshold,
        success=success.get(r.metric, True), observed=measured[r.metric].value,
        examples=measured[r.metric].examples, note=measured[r.metric].note) for r in rules(params)]
    outcome = ValidationOutcome(success=all(e.success for e in expectations), expectations=expectations, data_docs=docs)
    for e in outcome.failed:
        log.warning("expectation failed: %s (%s): observed %s, expected %s", e.name, e.description, e.observed, e.threshold)
    return outcome
