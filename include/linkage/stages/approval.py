"""People's decisions carried out by a run (CONTRACT §3a, §3b): what its approver is shown, the approval, and
what became of each decision once the run concluded or was undone.

The writes themselves are the `decided` phase's (`linkage.relations.decided`): planned, backed up,
journaled, applied and validated like any pass's. It walks approved decisions only. This module keeps
the decisions' side of it:

- `preview`: a decisions run's counts before anything is written (links, no-match, clears, the stale
  ones, who decided, those a second person approved already), for its approval request;
- `approve`: four eyes. The approver (the CLI: the person running it; Airflow: who answered in
  Required Actions; one of `LINKAGE_APPROVERS` when set) approves the pending decisions of the run's
  steps made before it started by *other* people (`linkage.core.people.person`); their own stay pending,
  saying so, for someone else. A refusal (or nobody answering in time) rejects the others' decisions,
  their items return to the queue, and the run closes `rejected`, unwritten;
- `settle`: a kept run's decisions (exactly those its `decided` batches walked: their journal's
  `carried`) become `applied` (their writes landed, or they write nothing), or `stale` with why (their
  document changed since, or before the write landed), the item back in the queue saying so; the run
  record names the decider and the approver of each decision it wrote (`decisions.people`);
- `undo`: a rolled-back run's decisions (those it carried) become `rolled_back`, their items open again.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from linkage.core.clock import as_utc
from linkage.core.errors import LinkageError
from linkage.core.models import RunKind, RunState
from linkage.core.people import approvers, may_approve, person
from linkage.relations.decided import DECIDED
from linkage.run.lifecycle import finalize
from linkage.run.record import RunRecord
from linkage.run.record_parts import Approval, DecisionsPreview, People
from linkage.run.session import Linkage
from linkage.store.decisions import DecisionKind, DecisionRecord, DecisionStatus

#: The kinds of run that carry out people's decisions (their `decided` phase).
DECIDING_KINDS = (RunKind.DECISIONS, RunKind.RECONCILE)
UNLANDED = "its document changed before the write landed"


def _before_run(lk: Linkage, run: RunRecord,
                status: DecisionStatus = DecisionStatus.PENDING) -> list[DecisionRecord]:
    """The pending (or approved) decisions of the run's steps made before it started."""
    return lk.decisions.pending(run.params.steps, before=as_utc(run.created_at), status=status)


def own(decisions: list[DecisionRecord], approver: str | None) -> list[DecisionRecord]:
    """The decisions `approver` made (the same person: `linkage.core.people`), which they cannot approve."""
    return [] if approver is None else [d for d in decisions if person(d.by) == person(approver)]


def preview(lk: Linkage, run_id: str, approver: str | None = None) -> DecisionsPreview:
    """What the run is about to do with people's decisions (read only; kept in its record): the approved ones
    and the pending ones a second person may approve (with a known `approver`, all but theirs)."""
    run = lk.record(run_id)
    pending, approved = _before_run(lk, run), _before_run(lk, run, DecisionStatus.APPROVED)
    mine = {d.id for d in own(pending, approver)}
    found = [d for d in pending if d.id not in mine] + approved
    stale = lk.states.stale(found)
    kinds = Counter(d.kind for d in found if d.id not in stale)
    shown = DecisionsPreview(total=len(found), links=kinds[DecisionKind.LINK], none=kinds[DecisionKind.NONE],
                             clears=kinds[DecisionKind.CLEAR], stale=len(stale),
                             deciders=dict(Counter(d.by for d in found).most_common(20)), approved=len(approved),
                             approver=approver, own=len(mine))
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


def _outcome(lk: Linkage, run: RunRecord, counts: dict[str, int], **more: object) -> None:
    """Add to the run's decision outcome (a count of 0 leaves none)."""
    merged = {**(run.decisions.outcome if run.decisions else {}), **counts}
    lk.runs.update(run.id, **{"decisions.outcome": {k: n for k, n in merged.items() if n},
                              **{f"decisions.{k}": v for k, v in more.items()}})


def check_approver(lk: Linkage, by: str) -> None:
    """Refuse, in one line, an approver LINKAGE_APPROVERS does not name."""
    if not may_approve(lk.settings.approvers, by):
        raise LinkageError(f"{person(by)} may not approve decisions: LINKAGE_APPROVERS names "
                           f"{', '.join(approvers(lk.settings.approvers))}")


def approve(lk: Linkage, run_id: str, *, approved: bool, by: str | None, via: str) -> Approval:
    """Record the run's approval: the others' pending decisions approved (or rejected, the run closed
    `rejected`, unwritten); the approver's own stay pending for someone else."""
    if by is not None:
        check_approver(lk, by)
    run = lk.record(run_id)
    pending = _before_run(lk, run)
    mine = own(pending, by)
    skipped = {d.id for d in mine}
    theirs = [d for d in pending if d.id not in skipped]
    approval = Approval(approved=approved, by=by, via=via, at=lk.clock(), decisions=len(theirs), own=len(mine))
    lk.runs.update(run_id, **{"decisions.approval": approval.model_dump()})
    if mine:
        lk.decisions.waiting([d.id for d in mine], f"{person(str(by))} cannot approve a decision of their own: "
                                                   "it waits for another person's approval")
    if approved:
        lk.decisions.approve([d.id for d in theirs], by=str(by), run_id=run_id)
        return approval
    reason = f"rejected by {by}" if by else "rejected: nobody approved it in time"
    rejected = _mark(lk, run, dict.fromkeys((d.id for d in theirs), reason), DecisionStatus.REJECTED, theirs,
                     reopen=True)
    _outcome(lk, run, {DecisionStatus.REJECTED.value: rejected})
    finalize(lk, run_id, RunState.REJECTED, reason)
    return approval


def _journaled(lk: Linkage, run_id: str) -> tuple[list[str], dict[str, str], set[str]]:
    """From the run's `decided` batches: the decisions they walked, those declined and why, and those whose
    writes landed."""
    carried: list[str] = []
    declined: dict[str, str] = {}
    landed: set[str] = set()
    for record in lk.journal.records(run_id, phase=DECIDED):
        carried += record.carried
        declined.update(record.declined)
        landed |= {w.group for w in record.writes}
    return carried, declined, landed


def _carried(lk: Linkage, run: RunRecord) -> tuple[list[DecisionRecord], dict[str, str], set[str]]:
    """The decisions a real run carried out (none for a dry run or a kind without the decided phase)."""
    if run.kind not in DECIDING_KINDS or run.dry_run:
        return [], {}, set()
    carried, declined, landed = _journaled(lk, run.id)
    return lk.decisions.by_ids(carried), declined, landed


def settle(lk: Linkage, run_id: str) -> None:
    """A kept run's decisions: `applied` where they took effect, `stale` (with why, their item reopened)
    where their document had changed; the run names who decided and who approved what it wrote."""
    run = lk.record(run_id)
    decisions, declined, landed = _carried(lk, run)
    if not decisions:
        return
    took = [d for d in decisions if d.id not in declined and (d.kind == DecisionKind.NONE or d.id in landed)]
    taken = {d.id for d in took}
    stale = [d for d in decisions if d.id not in taken]
    reasons = {d.id: f"stale: {declined.get(d.id, UNLANDED)}" for d in stale}
    _mark(lk, run, {}, DecisionStatus.APPLIED, took, False)
    _mark(lk, run, reasons, DecisionStatus.STALE, stale, True)
    people = Counter((d.by, d.approved_by) for d in took)
    _outcome(lk, run, {DecisionStatus.APPLIED.value: len(took), DecisionStatus.STALE.value: len(stale)},
             people=[People(by=by, approved_by=approver, count=n).model_dump()
                     for (by, approver), n in people.most_common()])


def undo(lk: Linkage, run_id: str) -> None:
    """A rolled-back run's decisions (applied by it, or still approved if it was undone before it concluded)
    become `rolled_back`, their items open again."""
    run = lk.record(run_id)
    carried, _, _ = _carried(lk, run)
    decisions = [d for d in carried if d.status in (DecisionStatus.APPLIED, DecisionStatus.APPROVED)]
    if not decisions:
        return
    reason = f"the run that applied it ({run_id}) was rolled back"
    undone = _mark(lk, run, dict.fromkeys((d.id for d in decisions), reason), DecisionStatus.ROLLED_BACK,
                   decisions, reopen=True)
    _outcome(lk, run, {DecisionStatus.APPLIED.value: 0, DecisionStatus.ROLLED_BACK.value: undone})
