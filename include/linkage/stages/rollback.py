"""Undoing a run through its journal (CONTRACT §5 "Rollback"), and what may be undone.

`rollback_target` is the one place that refuses: an unknown id, a dry run
(it wrote nothing), a run past its rollback window (its journal is, or is
about to be, pruned), a server that loses concurrent updates while the app
may be writing (`linkage.mongo.concurrency`). The CLI, the `linkage_rollback` DAG and a failed run's own
rollback all ask it. A run already rolled back is not refused: rolling it back
again changes nothing and says so.
"""

from __future__ import annotations

from linkage.core.errors import AlertedError, LinkageError
from linkage.core.models import RunState
from linkage.engine.conditional import Reverted, revert_batch
from linkage.engine.readahead import InFlight, bounded, read_ahead
from linkage.mongo.concurrency import probe_updates, require_kept_updates
from linkage.run.events import Event
from linkage.run.lifecycle import finalize
from linkage.run.record import RunRecord
from linkage.run.record_parts import RollbackOutcome
from linkage.run.session import Linkage
from linkage.stages.approval import undo
from linkage.store.journal import WRITTEN_STATES


class RollbackFailed(AlertedError):
    """A rollback stopped part-way; its alert (`rollback_failed`) has been sent."""


def rollback_target(lk: Linkage, given: str, *, probe: bool = True) -> RunRecord:
    """The run to roll back, named by either id (linkage's, or the Airflow DAG run's), or a one-line refusal
    (a database that is not the app's, before its runs are looked for). Without `probe`, the server is not
    asked whether it keeps concurrent updates: for a caller that only names the run before `rollback`
    asks, under the lease."""
    lk.require_app()
    run = lk.record(lk.runs.resolve(given))
    if run.dry_run:
        raise LinkageError(f"run {run.id} was a dry run: it wrote nothing to roll back")
    if run.state == RunState.REJECTED:
        raise LinkageError(f"run {run.id} was rejected ({run.error}): it wrote nothing to roll back")
    until = run.reversible_until(lk.settings.reversible_days)
    if run.state != RunState.ROLLED_BACK and until and (run.journal_pruned_at or until <= lk.clock()):
        raise LinkageError(f"run {run.id} is no longer reversible: its rollback window of "
                           f"{lk.settings.reversible_days} days (LINKAGE_REVERSIBLE_DAYS) ended on {until:%Y-%m-%d}")
    if probe and run.state != RunState.ROLLED_BACK:
        require_kept_updates(probe_updates(lk.bookkeeping("update_probe")), app_quiet=lk.settings.app_quiet,
                             what=f"the rollback of {run.id}")
    return run


def rollback(lk: Linkage, given: str) -> RollbackOutcome:
    """Undo a run through its journal, newest batch first, and close it `rolled_back`; the caller holds the
    run's lease (every write asks it).

    Only fields that still hold the value the run wrote are restored; a field the
    app changed since keeps the app's value (`kept`). A run already rolled back
    is left as it is (`already_rolled_back`): nothing is touched or counted twice.
    """
    run = rollback_target(lk, given)
    if run.state == RunState.ROLLED_BACK:
        return (run.rollback or RollbackOutcome()).model_copy(update={"already_rolled_back": True})
    undone = Reverted()
    flight = InFlight(lk.settings.in_flight)  # the next batches are read while this one is reverted
    written = lk.journal.records(run.id, newest_first=True, states=WRITTEN_STATES)
    try:
        with read_ahead(bounded(written, flight), flight) as records:
            for record in records:
                try:
                    lk.fence(record.id)
                    undone += revert_batch(lk.app, record, lk.settings.write_chunk)
                finally:
                    flight.release()
    except Exception as exc:
        lk.runs.update(run.id, rollback=RollbackOutcome(**undone._asdict(), error=str(exc)[:500]).model_dump())
        lk.runs.finish(run.id, RunState.ROLLBACK_FAILED, f"rollback failed: {exc}"[:500])
        lk.events.emit(Event.ROLLBACK_FAILED, lk.record(run.id))
        raise RollbackFailed(f"rollback of {run.id} failed: {exc}") from exc
    outcome = RollbackOutcome(**undone._asdict())
    lk.runs.update(run.id, rollback=outcome.model_dump(exclude_none=True))
    undo(lk, run.id)  # the decisions it carried out: rolled back, their items open again
    finalize(lk, run.id, RunState.ROLLED_BACK, run.error)
    lk.events.emit(Event.ROLLED_BACK, lk.record(run.id))
    return outcome
