"""Alerts that page once: a kept run's drift pages only when it is new.

An on-call engineer mutes an alert that fires every night, and then misses the
night it matters. So a kept run's `drift_found` fires only when the drift is
new: a document in violation that was not before this run (its review item was
opened by it), or an expectation whose drift count rose above the baseline, the
counts as they stood when drift last paged, lowered as drift is resolved (so
drift that comes back pages again). Unchanged drift stays in the run's note,
`linkage status` and the view. While drift stays open a reminder digest goes out
every `LINKAGE_DRIFT_REMINDER_DAYS`. A failed run, a rollback and a failed
rollback always alert (`linkage.stages.conclude`, `linkage.stages.rollback`).

The baseline is one document, `linkage_paging`, and every kept run records its
`Paging`: why it did, or did not, page.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from linkage.run.record import RunRecord
from linkage.run.record_parts import Paging
from linkage.run.session import Linkage

BASELINE = "drift"
DAY = 86_400


class Baseline(BaseModel):
    counts: dict[str, int] = Field(default_factory=dict)
    paged_run: str | None = None
    paged_at: float | None = None
    reminded_at: float | None = None


def _load(lk: Linkage) -> Baseline:
    doc = lk.bookkeeping("paging").find_one({"_id": BASELINE}) or {}
    return Baseline.model_validate({k: v for k, v in doc.items() if k != "_id"})


def _ago(since: float | None, now: float) -> str:
    if since is None:
        return "ever"
    days = int((now - since) // DAY)
    return "today" if days == 0 else "1 day ago" if days == 1 else f"{days} days ago"


def should_page(lk: Linkage, run: RunRecord, now: float | None = None) -> Paging:
    """Whether this kept run's drift pages (or reminds), recorded with the run; the baseline moved on."""
    now = now or lk.clock().timestamp()
    baseline, drift = _load(lk), run.drift
    since_run, since = baseline.paged_run, baseline.paged_at
    current = drift.by_expectation if drift else {}
    rose = {rule: n - baseline.counts.get(rule, 0) for rule, n in current.items() if n > baseline.counts.get(rule, 0)}
    new = drift.new if drift else {}
    total = sum(current.values())
    page = bool(rose or new)
    last = max(t for t in (baseline.reminded_at, baseline.paged_at, 0.0) if t is not None)
    remind = not page and total > 0 and lk.settings.drift_reminder_days > 0 and \
        now - last >= lk.settings.drift_reminder_days * DAY
    if page:
        parts = [f"+{n} {rule}" for rule, n in sorted((new or rose).items())]
        why = f"new drift since {since_run or 'the first run'} ({_ago(since, now)}): " + ", ".join(parts)
        baseline = Baseline(counts=dict(current), paged_run=run.id, paged_at=now, reminded_at=now)
    else:
        why = f"drift unchanged: {total} open, none new since {since_run} ({_ago(since, now)})" if total else \
            "no drift"
        rules = set(baseline.counts) | set(current)
        baseline.counts = {rule: min(baseline.counts.get(rule, 0), current.get(rule, 0)) for rule in rules}
        if remind:
            why, baseline.reminded_at = f"reminder: {total} still open ({why})", now
    paging = Paging(page=page, remind=remind, why=why, open=total, rose=rose, new=dict(new), since_run=since_run,
                    since=since)
    lk.bookkeeping("paging").replace_one({"_id": BASELINE}, {"_id": BASELINE, **baseline.model_dump()}, upsert=True)
    lk.runs.update(run.id, paging=paging.model_dump())
    return paging
