"""The one decision on a validated run, and acting on it: keep it, roll it back, or keep it failed.

The CLI's runner calls `conclude`; in Airflow, `decide` branches on `verdict`
and `finalize` or `rollback` call `conclude`. A kept run settles the people's decisions it carried out
(`linkage.stages.approval`). A kept real run raises
`drift_found` here, after it is closed, when its drift is new (or
`drift_reminder` when a digest is due: `linkage.run.paging`); a rolled-back run
raises `rolled_back` in `linkage.stages.rollback`.
"""

from __future__ import annotations

from enum import StrEnum

from linkage.core.errors import LinkageError
from linkage.core.models import RunState
from linkage.run.events import Event
from linkage.run.lifecycle import finalize
from linkage.run.paging import should_page
from linkage.run.record import RunRecord
from linkage.run.session import Linkage
from linkage.stages.approval import settle
from linkage.stages.rollback import rollback


class Verdict(StrEnum):
    """What happens to a validated run (`verdict`)."""

    KEEP = "keep"  # validation passed (drift may have been found: it is reported, not rolled back)
    ROLL_BACK = "roll_back"  # a document the run wrote broke an expectation, or coverage is too low
    KEEP_FAILED = "keep_failed"  # the same, with rollback_on_failure off: kept, the run ends failed
    NOT_VALIDATED = "not_validated"  # an earlier task failed: nothing to decide yet


def verdict(run: RunRecord) -> Verdict:
    """The one decision on a run after validation (the CLI and the DAG both ask here).

    A dry run wrote nothing, so it is kept whatever its report says.
    """
    if run.validation is None:
        return Verdict.NOT_VALIDATED
    if run.dry_run or run.validation.success:
        return Verdict.KEEP
    return Verdict.ROLL_BACK if run.params.rollback_on_failure else Verdict.KEEP_FAILED


def conclude(lk: Linkage, run_id: str) -> Verdict:
    """Act on the verdict: keep the run (and say what drift it found), roll it back, or keep it failed."""
    run = lk.record(run_id)
    decided = verdict(run)
    if decided == Verdict.NOT_VALIDATED:
        raise LinkageError(f"run {run_id} has not been validated: nothing to conclude")
    if decided == Verdict.KEEP:
        settle(lk, run_id)  # before the run closes: a decision left pending by a crash here is settled on resume
        finalize(lk, run_id)
        if not run.dry_run:
            paging = should_page(lk, run)
            if paging.page or paging.remind:
                lk.events.emit(Event.DRIFT_FOUND if paging.page else Event.DRIFT_REMINDER, lk.record(run_id))
        return decided
    assert run.validation is not None
    reason = f"validation failed: {run.validation.failure_reason()}"[:500]
    lk.runs.update(run_id, error=reason)
    if decided == Verdict.ROLL_BACK:
        rollback(lk, run_id)
    else:
        settle(lk, run_id)
        finalize(lk, run_id, RunState.FAILED, reason)
    return decided
