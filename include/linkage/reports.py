"""What people read about linkage: run history, coverage over time, the review queue, recent alerts.

Built from the bookkeeping collections in bounded reads (a page of runs, a page of
review items, a stream for the CSV export); everything here is ids, counts and
reasons, never a phone or an email. The Linkage view in Airflow and `linkage
status` both read from here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from linkage.masking import redact
from linkage.models import Category
from linkage.reviews import OPEN, RESOLVED
from linkage.runs import as_utc

if TYPE_CHECKING:
    from linkage.handle import Linkage

REVIEW_COLUMNS = ["item", "step", "collection", "document_oid", "document_id", "category", "reason", "candidate",
                  "status", "found_by", "run_id"]
PAGE_SIZES = (25, 50, 100, 500)


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


class ReviewFilter(BaseModel):
    step: str | None = None
    category: Category | None = None
    status: str | None = OPEN

    def query(self) -> dict[str, Any]:
        return {key: value for key, value in (("step", self.step), ("category", self.category),
                                               ("status", self.status)) if value}


class ReviewPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def _row(item: dict[str, Any]) -> dict[str, Any]:
    """A review item as shown and exported: ids, category and reason only."""
    return {"item": str(item["_id"]), "step": item.get("step"), "collection": item.get("collection"),
            "document_oid": str(item.get("document_oid")), "document_id": item.get("document_id"),
            "category": item.get("category"), "reason": item.get("reason"), "candidate": item.get("candidate"),
            "status": item.get("status"), "found_by": item.get("found_by"), "run_id": item.get("run_id")}


def review_page(lk: Linkage, selected: ReviewFilter, page: int = 1, size: int = 50) -> ReviewPage:
    query = selected.query()
    page, size = max(1, page), size if size in PAGE_SIZES else 50
    items = [_row(item) for item in lk.reviews.items(query, skip=(page - 1) * size, limit=size)]
    return ReviewPage(items=items, total=lk.reviews.coll.count_documents(query), page=page, size=size)


def review_csv(lk: Linkage, selected: ReviewFilter) -> Iterator[str]:
    """The selected review items as CSV, a line at a time (the whole queue never sits in memory)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REVIEW_COLUMNS)
    writer.writeheader()
    for item in lk.reviews.items(selected.query()):
        writer.writerow(_row(item))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def alerts(lk: Linkage, limit: int = 20) -> list[dict[str, Any]]:
    return [{**alert, "subject": redact(alert.get("subject", ""))} for alert in lk.alerts.recent(limit)]


STATUSES = (OPEN, RESOLVED)
