"""The validation stage: measure the database and judge the run on what it wrote (CONTRACT §6).

Violations in links this run wrote decide the verdict; the rest is drift,
recorded as review items (a real run) and in the run record (any run). A real
run whose validation failed raises `validation_failed` here, for both
executors.
"""

from __future__ import annotations

from collections.abc import Callable

from linkage.coverage import less_written
from linkage.events import Event
from linkage.handle import Linkage
from linkage.journal import LinkValue
from linkage.models import Decision
from linkage.records import DriftRecord
from linkage.validation import ValidationOutcome
from linkage.validation.checks import Finding
from linkage.validation.metrics import measure

VALIDATION = "validation"  # what review items found by validation say they were found by


def _drift_reviews(lk: Linkage, run_id: str, new: DriftRecord) -> Callable[[list[Finding]], None]:
    """Record the drift validation finds as review items, and count in `new` the documents whose item this run
    opened (they were not in the queue before it: new drift, which pages; `linkage.paging`).

    A document this run's own phases already put in the queue keeps its item:
    their reason (why a pair could not be repaired, say) says more.
    """
    def record(findings: list[Finding]) -> None:
        items = {lk.reviews.item_id(str(f.step), f.oid): f for f in findings if f.rule.judges_the_run and f.step}
        known = lk.reviews.recorded_by_run(run_id, list(items))
        grouped: dict[tuple[str, str], list[Decision]] = {}
        for item_id, f in items.items():
            if item_id not in known:
                grouped.setdefault((str(f.step), f.collection), []).append(f.decision())
        for (step, collection), decisions in grouped.items():
            lk.reviews.record(run_id, step, collection, decisions, found_by=VALIDATION)
        for item_id, opened_by in lk.reviews.opened_by(list(items)).items():
            if opened_by == run_id:
                new.add_new(items[item_id].rule.name, items[item_id].example)

    return record


def validate_run(lk: Linkage, run_id: str) -> ValidationOutcome:
    """Measure the database and judge the run on what it wrote; stored with the run.

    The coverage is counted on the way; the coverage before the run is that,
    less what the run wrote.
    """
    from linkage.validation.gate import validate

    run = lk.record(run_id)

    def written_by_run(values: list[LinkValue]) -> set[LinkValue]:
        return lk.journal.written_by(run_id, values)

    new = DriftRecord()
    on_drift = (lambda findings: None) if run.dry_run else _drift_reviews(lk, run_id, new)
    measured, coverage_after = measure(lk.db, attribute=written_by_run, on_drift=on_drift,
                                       backup_path=run.backup.path if run.backup else None)
    outcome = validate(measured, run.params, lk.settings.docs_dir, run_id, lk.settings.db)
    if not run.dry_run:
        lk.reviews.resolve_unconfirmed(run_id, VALIDATION)
    drift = new.model_copy(update={"total": outcome.drift,
                                   "by_expectation": {e.name: e.drift for e in outcome.expectations if e.drift}})
    coverage_before = less_written(coverage_after, {} if run.dry_run else lk.journal.links_written(run_id))
    lk.runs.update(run_id, validation=outcome.as_record(), drift=drift.model_dump(), coverage_after=coverage_after,
                   coverage_before=coverage_before)
    if not outcome.success and not run.dry_run:
        lk.events.emit(Event.VALIDATION_FAILED, lk.record(run_id))
    return outcome

