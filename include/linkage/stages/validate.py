"""The validation stage: measure the database and judge the run on what it wrote (CONTRACT §6).

Violations in links this run wrote decide the verdict; the rest is drift,
recorded as review items (a real run), in the run record (any run) and, for a
dry run, listed there document by document (it leaves no review items). A
problem a person decided to leave is not drift while its document is as it
was. A real run whose validation failed raises `validation_failed` here, for
both executors.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from linkage.core.models import Ruling, RunKind
from linkage.engine.coverage import less_written
from linkage.relations.checks import Finding
from linkage.run.events import Event
from linkage.run.params import MigrationParams
from linkage.run.record import RunRecord
from linkage.run.record_parts import FINDINGS_CAP, DriftRecord, FindingsRecord, FoundItem
from linkage.run.session import Linkage
from linkage.validation import ValidationOutcome
from linkage.validation.metrics import Measuring

VALIDATION = "validation"  # what review items found by validation say they were found by


def _drift_reviews(lk: Linkage, run_id: str, new: DriftRecord) -> Callable[[list[Finding]], None]:
    """Record the drift validation finds as review items, and count in `new` the documents whose item this run
    opened (they were not in the queue before it: new drift, which pages; `linkage.run.paging`).

    A document this run's own phases already put in the queue keeps its item:
    their reason (why a pair could not be repaired, say) says more.
    """
    def record(findings: list[Finding]) -> None:
        items = {lk.reviews.item_id(str(f.step), f.oid): f for f in findings if f.rule.judges_the_run and f.step}
        known = lk.reviews.recorded_by_run(run_id, list(items))
        grouped: dict[tuple[str, str], list[Ruling]] = {}
        for item_id, f in items.items():
            if item_id not in known:
                grouped.setdefault((str(f.step), f.collection), []).append(f.decision())
        for (step, collection), decisions in grouped.items():
            lk.reviews.record(run_id, step, collection, decisions, found_by=VALIDATION)
        for item_id, opened_by in lk.reviews.opened_by(list(items)).items():
            if opened_by == run_id:
                new.add_new(items[item_id].rule.name, items[item_id].example)

    return record


def _judged_by(run: RunRecord) -> MigrationParams:
    """The run's parameters as the gate applies them. A decisions run moves coverage only by what people
    decided, so the coverage it finds is not its doing: it is judged on its writes' integrity alone (the
    thresholds at 0, the coverage still reported)."""
    if run.kind != RunKind.DECISIONS:
        return run.params
    return run.params.model_copy(update={"thresholds": dict.fromkeys(run.params.thresholds, 0.0)})


class _Listed:
    """What a dry run found, document by document, for its record (the first `FINDINGS_CAP`)."""

    def __init__(self) -> None:
        self.found: list[FoundItem] = []
        self.more = 0

    def __call__(self, findings: list[Finding]) -> None:
        room = max(0, FINDINGS_CAP - len(self.found))
        self.found += [FoundItem(rule=f.rule.name, step=f.step, collection=f.collection, document_oid=str(f.oid),
                                 document_id=f.app_id if isinstance(f.app_id, str) else None,
                                 category=f.category.value, reason=f.reason) for f in findings[:room]]
        self.more += max(0, len(findings) - room)


def validate_run(lk: Linkage, run_id: str) -> ValidationOutcome:
    """Measure the database and judge the run on what it wrote; stored with the run.

    The coverage is counted on the way; the coverage before the run is that,
    less what the run wrote.
    """
    from linkage.validation.gate import validate

    run = lk.record(run_id)
    new, listed = DriftRecord(), _Listed()
    on_drift = listed if run.dry_run else _drift_reviews(lk, run_id, new)
    walk = Measuring(lk.db, attribute=partial(lk.journal.written_by, run_id), excuse=lk.reviews.undecided,
                     backup_path=run.backup.path if run.backup else None)
    for drifted in walk:
        on_drift(drifted)
    measured, coverage_after = walk.measured()
    outcome = validate(measured, _judged_by(run), lk.settings.docs_dir, run_id, lk.settings.db)
    if not run.dry_run:
        lk.reviews.resolve_unconfirmed(run_id, VALIDATION)
    drift = new.model_copy(update={"total": outcome.drift,
                                   "by_expectation": {e.name: e.drift for e in outcome.expectations if e.drift}})
    coverage_before = less_written(coverage_after, {} if run.dry_run else lk.journal.links_written(run_id))
    found = {"findings": FindingsRecord(items=listed.found, more=listed.more).model_dump()} if run.dry_run else {}
    lk.runs.update(run_id, validation=outcome.as_record(), drift=drift.model_dump(), coverage_after=coverage_after,
                   coverage_before=coverage_before, **found)
    if not outcome.success and not run.dry_run:
        lk.events.emit(Event.VALIDATION_FAILED, lk.record(run_id))
    return outcome

