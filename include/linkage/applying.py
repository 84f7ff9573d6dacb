"""People's decisions carried out by a run (CONTRACT §3a): what its approver is shown, the approval, and
what became of each decision once the run concluded or was undone.

The writes themselves are the `decided` phase's (`linkage.steps.decided`): planned, backed up,
journaled, applied and validated like any pass's. This module keeps the decisions' side of it:

- `preview`: a decisions run's counts before anything is written (links, no-match, clears, the stale
  ones, who decided), for its approval request;
- `approve`: who let it write (the CLI: the person running it; Airflow: the approver in Required
  Actions), or who refused it (or that nobody answered in time): a refused run writes nothing, its
  decisions become `rejected` and their items return to the queue;
- `settle`: a kept run's decisions become `applied` (their writes landed, or they write nothing),
  or `stale` with why (their document changed since, or before the write landed), the item back in
  the queue saying so;
- `undo`: a rolled-back run's decisions become `rolled_back` and their items open again.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from linkage.clock import as_utc
from linkage.decisions import DecisionKind, DecisionRecord, DecisionStatus
from linkage.handle import Linkage
from linkage.models import RunKind, RunState
from linkage.records import Approval, DecisionsPreview
from linkage.runs import RunRecord
from linkage.stages import finalize
from linkage.steps.decided import DECIDED

#: The kinds of run that carry out people's decisions (their `decided` phase).
DECIDING_KINDS = (RunKind.DECISIONS, RunKind.RECONCILE)
UNLANDED = "its document changed before the write landed"


def _before_run(lk: Linkage, run: RunRecord) -> list[DecisionRecord]:
    """The pending decisions of the run's steps made before it started (what its decided phase walks)."""
    return lk.decisions.pending(run.params.steps, before=as_utc(run.created_at))


def _in_run(lk: Linkage, run: RunRecord) -> list[DecisionRecord]:
    """The pending decisions a real run carries out (none for a kind without the decided phase)."""
    return [] if run.kind not in DECIDING_KINDS or run.dry_run else _before_run(lk, run)


def preview(lk: Linkage, run_id: str) -> DecisionsPreview:
    """What the run is about to do with people's decisions (read only; kept in its record)."""
    pending = _before_run(lk, lk.record(run_id))
    stale = lk.states.stale(pending)
    kinds = Counter(d.kind for d in pending if d.id not in stale)
    shown = DecisionsPreview(total=len(pending), links=kinds[DecisionKind.LINK], none=kinds[DecisionKind.NONE],
                             clears=kinds[DecisionKind.CLEAR], stale=len(stale),
                             deciders=dict(Counter(d.by for d in pending).most_common(20)))
    lk.runs.update(run_id, **{"decisions.preview": shown.model_dump()})
    return shown


def _mark(lk: Linkage, run: RunRecord, reasons: dict[str, str], status: DecisionStatus,
          decisions: list[DecisionRecord], reopen: bool) -> int:
    """Move decisions to `status`, each with its reason; their items back in the queue saying why."""
    by_reason: dict[str, list[DecisionRecord]] = defaultdict(list)
    for d in decisions:
        by_reason[reasons.get(d.id, "")].append(d)
    moved = 0
    for reason, group in by_reason.items():
        moved += lk.decisions.mark([d.id for d in group], status, run_id=run.id, reason=reason or None)
        if reopen:
            lk.reviews.reopen([d.item_id for d in group], reason or status.value)
    return moved


def _outcome(lk: Linkage, run_id: str, counts: dict[str, int]) -> None:
    lk.runs.update(run_id, **{"decisions.outcome": {k: n for k, n in counts.items() if n}})


def approve(lk: Linkage, run_id: str, *, approved: bool, by: str | None, via: str) -> Approval:
    """Record the run's approval; a refusal rejects its decisions and closes the run `rejected`, unwritten."""
    approval = Approval(approved=approved, by=by, via=via, at=lk.clock())
    lk.runs.update(run_id, **{"decisions.approval": approval.model_dump()})
    if approved:
        return approval
    run = lk.record(run_id)
    reason = f"rejected by {by}" if by else "rejected: nobody approved it in time"
    pending = _before_run(lk, run)
    rejected = _mark(lk, run, dict.fromkeys((d.id for d in pending), reason), DecisionStatus.REJECTED, pending,
                     reopen=True)
    _outcome(lk, run_id, {DecisionStatus.REJECTED.value: rejected})
    finalize(lk, run_id, RunState.REJECTED, reason)
    return approval


def _journaled(lk: Linkage, run_id: str) -> tuple[dict[str, str], set[str]]:
    """From the run's `decided` batches: the decisions declined and why, and those whose writes landed."""
    declined: dict[str, str] = {}
    landed: set[str] = set()
    for record in lk.journal.records(run_id, phase=DECIDED):
        declined.update(record.declined)
        landed |= {w.group for w in record.writes}
    return declined, landed


def settle(lk: Linkage, run_id: str) -> None:
    """A kept run's decisions: `applied` where they took effect, `stale` (with why, their item reopened)
    where their document had changed."""
    run = lk.record(run_id)
    decisions = _in_run(lk, run)
    if not decisions:
        return
    declined, landed = _journaled(lk, run_id)
    took = [d for d in decisions if d.id not in declined and (d.kind == DecisionKind.NONE or d.id in landed)]
    taken = {d.id for d in took}
    stale = [d for d in decisions if d.id not in taken]
    reasons = {d.id: f"stale: {declined.get(d.id, UNLANDED)}" for d in stale}
    _outcome(lk, run_id, {DecisionStatus.APPLIED.value: _mark(lk, run, {}, DecisionStatus.APPLIED, took, False),
                          DecisionStatus.STALE.value: _mark(lk, run, reasons, DecisionStatus.STALE, stale, True)})


def undo(lk: Linkage, run_id: str) -> None:
    """A rolled-back run's decisions (applied by it, or still pending if it was undone before it concluded)
    become `rolled_back`, their items open again."""
    run = lk.record(run_id)
    decisions = lk.decisions.settled_by(run_id, DecisionStatus.APPLIED) + _in_run(lk, run)
    if not decisions:
        return
    reason = f"the run that applied it ({run_id}) was rolled back"
    undone = _mark(lk, run, dict.fromkeys((d.id for d in decisions), reason), DecisionStatus.ROLLED_BACK,
                   decisions, reopen=True)
    _outcome(lk, run_id, {**(run.decisions.outcome if run.decisions else {}),
                          DecisionStatus.APPLIED.value: 0, DecisionStatus.ROLLED_BACK.value: undone})
