"""Great Expectations as the gate: one context per process, the suites built once.

GX judges one row of observations (computed by `metrics`) with two suites, both
defined once from the registered rules (`REGISTRY.rules()`): `linkage_run` (critical: what decides whether
the run is kept, coverage thresholds as runtime parameters) and `linkage_drift`
(warnings: violations the run found but did not cause). Each run gets Data
Docs of its own, `<docs_dir>/<run slug>/index.html`, rendered from this run's
results only and made to work offline. Nothing is shared between runs but the
context in memory, so runs with different thresholds cannot race, and a result
GX did not report fails closed.

GX is imported here only, and only when validation runs: it is slow to import.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from linkage.core.outcome import ExpectationOutcome, ValidationOutcome
from linkage.relations import REGISTRY
from linkage.relations.rules import DRIFT_SUITE, RUN_SUITE, Rule, RuleKind
from linkage.run.params import MigrationParams
from linkage.run.record import run_slug
from linkage.validation.annotate import Annotation, annotation
from linkage.validation.metrics import Measured

log = logging.getLogger("linkage.validation")
DRIFT = "__drift"


def _quiet_gx() -> None:
    """GX's own logging is noise at INFO: keep warnings and errors only (some GX modules set INFO on
    their own loggers when imported, so this runs again once GX is)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    names = [name for name in logging.root.manager.loggerDict if name.startswith("great_expectations")]
    for name in ["great_expectations", *names]:
        logging.getLogger(name).setLevel(logging.WARNING)


class Gate:
    """The GX side of validation, built once per process (see module docstring)."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        _quiet_gx()
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.metadata_types import FailureSeverity

        _quiet_gx()

        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        asset = self.context.data_sources.add_pandas("linkage").add_dataframe_asset("observations")
        batch = asset.add_batch_definition_whole_dataframe("run")
        run_suite = gx.ExpectationSuite(name=RUN_SUITE)
        drift_suite = gx.ExpectationSuite(name=DRIFT_SUITE)
        for rule in rules:  # each described in words: the rule's own description, as the Data Docs show it
            label = f"[{rule.step or 'run'}] {rule.description}"
            if rule.threshold is not None:
                run_suite.add_expectation(gxe.ExpectColumnMinToBeBetween(
                    column=rule.name, min_value={"$PARAMETER": rule.threshold.parameter},
                    description=f"{label}: at least ${rule.threshold.parameter} after the run"))
            elif rule.judges_the_run:
                run_suite.add_expectation(gxe.ExpectColumnMaxToBeBetween(
                    column=rule.name, max_value=0, description=f"{label}: no violation in a document this run wrote"))
            if rule.kind != RuleKind.COVERAGE:
                drift_suite.add_expectation(gxe.ExpectColumnMaxToBeBetween(
                    column=rule.name + DRIFT, max_value=0, severity=FailureSeverity.WARNING,
                    description=f"{label}: violations this run found but did not cause (drift; never fails it)"))
        definitions = [self.context.validation_definitions.add(gx.ValidationDefinition(
            name=suite.name, data=batch, suite=self.context.suites.add(suite))) for suite in (run_suite, drift_suite)]
        self.checkpoint = self.context.checkpoints.add(gx.Checkpoint(
            name="linkage", validation_definitions=definitions, result_format="SUMMARY"))
        self._lock = threading.Lock()  # one run's Data Docs site at a time in this context

    def judge(self, observations: dict[str, float], thresholds: dict[str, float], site: Path,
              note: Annotation) -> dict[str, tuple[bool, Any]]:
        """GX's verdict per column (success, observed value); Data Docs written to `site`, saying what they
        judged (`note`)."""
        import pandas as pd
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

        from linkage.validation.offline import make_offline

        row = pd.DataFrame([observations], dtype=object)  # Python numbers: GX renders numpy ones as errors
        with self._lock:
            result = self.checkpoint.run(batch_parameters={"dataframe": row}, expectation_parameters=thresholds,
                                         run_id=RunIdentifier(run_name=site.name))
            self.context.add_data_docs_site(site.name, self._site(site))
            try:
                # the results and the suites they link to (the index names both; a suite's page says its rules).
                # One build takes both kinds (the site builder sorts them by type), though its hint names one.
                suites = [ExpectationSuiteIdentifier(name=name) for name in (RUN_SUITE, DRIFT_SUITE)]
                both: Any = [*result.run_results, *suites]
                self.context.build_data_docs(site_names=[site.name], resource_identifiers=both)
            finally:
                self.context.delete_data_docs_site(site.name)
        make_offline(site)
        note.site(site)
        verdicts: dict[str, tuple[bool, Any]] = {}
        for run_result in result.run_results.values():
            for r in run_result.results:
                if r.expectation_config is not None:
                    verdicts[r.expectation_config.kwargs["column"]] = (bool(r.success), r.result.get("observed_value"))
        return verdicts

    @staticmethod
    def _site(site: Path) -> Any:
        """A Data Docs site of this run's results only, in a folder of its own."""
        return {"class_name": "SiteBuilder", "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "site_section_builders": {"profiling": "0"}}


def gx_version() -> str:
    from importlib.metadata import version

    return version("great_expectations")


_gates: dict[tuple[Rule, ...], Gate] = {}
_gate_lock = threading.Lock()


def gate(rules: tuple[Rule, ...] | None = None) -> Gate:
    """The gate of these rules (the registered ones by default), built once per process."""
    rules = tuple(REGISTRY.rules()) if rules is None else rules
    with _gate_lock:
        if rules not in _gates:
            _gates[rules] = Gate(rules)
        return _gates[rules]


def warm_up() -> threading.Thread:
    """Build the gate in a thread of its own while a run's backfills wait on the database.

    Importing GX and building its context costs seconds of CPU; in one process
    (the CLI, a bench) it then overlaps the writes instead of following them.
    """
    thread = threading.Thread(target=gate, name="linkage-gx-warm-up", daemon=True)
    thread.start()
    return thread


def _outcome(rule: Rule, m: Measured, params: MigrationParams,
             verdicts: dict[str, tuple[bool, Any]]) -> ExpectationOutcome:
    """One expectation's outcome: a rule no check measured, or that GX did not report on, fails (closed), and
    so does a coverage of no documents of a step the run was asked for, unless it allows empty collections;
    drift never fails the run."""
    if m.unmeasured:
        success = False
    elif m.empty:
        success = params.allow_empty or rule.step not in params.steps
    else:
        success = verdicts.get(rule.name, (False, None))[0] if rule.judges_the_run else True
    return ExpectationOutcome(name=rule.name, suite=str(rule.step or "run"), description=rule.description,
                              success=success, observed=m.value, threshold=rule.threshold_text(params.thresholds),
                              examples=m.examples, drift=m.drift, drift_examples=m.drift_examples, note=m.note)


def validate(measured: dict[str, Measured], params: MigrationParams, docs_dir: Path, run_name: str,
             database: str, *, of_a_run: bool = True) -> ValidationOutcome:
    """Judge the measured observations (of `database`) with the run's thresholds; Data Docs under `docs_dir`.
    Not `of_a_run`: `linkage validate`, the data judged as it stands (every violation counts)."""
    site = docs_dir / run_slug(run_name)
    if site.exists():
        shutil.rmtree(site)  # a re-validated (resumed) run gets its latest verdict only
    rules = tuple(REGISTRY.rules())
    unmeasured = Measured(value=None, unmeasured=True, note="not measured")
    observations: dict[str, float] = {}
    for rule in rules:
        m = measured.get(rule.name, unmeasured)
        observations[rule.name] = m.value if m.value is not None else 0
        observations[rule.name + DRIFT] = m.drift
    note = annotation(run_name, dry_run=params.dry_run, database=database, gx_version=gx_version(),
                      thresholds=params.thresholds)
    verdicts = gate(rules).judge(observations, params.thresholds, site, note)
    expectations = [_outcome(rule, measured.get(rule.name, unmeasured), params, verdicts) for rule in rules]
    outcome = ValidationOutcome(success=all(e.success for e in expectations), expectations=expectations,
                                data_docs=f"{site.name}/index.html")
    # a dry run (or a plain validation) only reports what it found: INFO; a real run's failures WARNING (its
    # verdict, a failed or rolled-back run, is the ERROR)
    level, what = (logging.INFO, "not met by the data as it stands") if not of_a_run else \
        (logging.INFO, "found by a dry run, judged by a real run") if params.dry_run else (logging.WARNING, "failed")
    for e in outcome.failed:
        log.log(level, "expectation %s: %s (%s): observed %s, expected %s", what, e.name, e.description,
                e.shown, e.threshold)
    return outcome
