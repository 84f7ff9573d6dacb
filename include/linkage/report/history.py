"""What people read about linkage: run history, coverage over time, a dry run's findings, recent alerts.

Built from the bookkeeping collections in bounded reads (a page of runs, one run's
findings); everything here is ids, counts and reasons, never a phone or an email.
The Linkage view in Airflow and `linkage status` both read from here; the review
queue's pages are `linkage.review.pages`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from linkage.core.clock import as_utc
from linkage.core.mask import redact
from linkage.core.models import REVIEW_CATEGORIES, Category
from linkage.run.record_parts import FindingsRecord, FoundItem

if TYPE_CHECKING:
    from linkage.run.session import Linkage


class RunRow(BaseModel):
    """One run as the history shows it."""

    run_id: str
    kind: str
    dry_run: bool
    state: str
    created_at: Any = None
    finished_at: Any = None
    seconds: float | None = None
    linked: dict[str, int]
    drift: int
    validated: bool | None
    data_docs: str | None
    backup: str | None
    dag_id: str | None
    dag_run_id: str | None
    coverage: dict[str, float]
    error: str | None

    @property
    def can_roll_back(self) -> bool:
        return not self.dry_run and self.state not in ("rolled_back", "running")


def _seconds(started: Any, finished: Any) -> float | None:
    start, end = as_utc(started), as_utc(finished)
    return round((end - start).total_seconds(), 1) if start and end else None


def run_rows(lk: Linkage, limit: int = 20, skip: int = 0) -> list[RunRow]:
    rows = []
    for run in lk.runs.recent(limit, skip):
        airflow = run.get("airflow") or {}
        rows.append(RunRow(
            run_id=run["_id"], kind=run.get("kind", "migrate"), dry_run=bool(run.get("dry_run")), state=run["state"],
            created_at=run.get("created_at"), finished_at=run.get("finished_at"),
            seconds=_seconds(run.get("created_at"), run.get("finished_at")),
            linked={step: data.get("counts", {}).get("linked", 0) for step, data in run.get("steps", {}).items()},
            drift=(run.get("drift") or {}).get("total", 0),
            validated=(run.get("validation") or {}).get("success"),
            data_docs=(run.get("validation") or {}).get("data_docs"), backup=(run.get("backup") or {}).get("path"),
            dag_id=airflow.get("dag_id"), dag_run_id=airflow.get("dag_run_id"),
            coverage={name: cov["ratio"] for name, cov in (run.get("coverage_after") or {}).items()},
            error=redact(run["error"]) if run.get("error") else None))
    return rows


class DryRunFindings(BaseModel):
    """What a dry run found, from its own record: what it would link and leave per step, the drift per
    expectation, and the drift's documents (it writes no review items to find them in)."""

    run_id: str
    would_link: dict[str, int]
    left: dict[str, dict[str, int]]
    drift: dict[str, int]
    items: list[FoundItem]
    more: int


def dry_run_findings(lk: Linkage, run_id: str, rule: str | None = None) -> DryRunFindings | None:
    """A dry run's findings (those of one expectation, when `rule` is given); None if it is not a dry run."""
    found = lk.runs.find(run_id)
    if found is None or not found.get("dry_run"):
        return None
    run = lk.record(run_id)
    listed = run.findings or FindingsRecord()
    counts = run.counts()
    return DryRunFindings(
        run_id=run.id, would_link={step: c[Category.LINKED.value] for step, c in counts.items()},
        left={step: {k: n for k, n in c.items() if n and k in REVIEW_CATEGORIES} for step, c in counts.items()},
        drift=run.drift.by_expectation if run.drift else {},
        items=[i for i in listed.items if rule is None or i.rule == rule], more=listed.more)


def alerts(lk: Linkage, limit: int = 20) -> list[dict[str, Any]]:
    return [{**alert, "subject": redact(alert.get("subject", ""))} for alert in lk.alerts.recent(limit)]

