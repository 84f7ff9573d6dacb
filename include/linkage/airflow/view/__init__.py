"""The Linkage view: a FastAPI app the plugin mounts in Airflow's api-server at `/linkage`.

It shows, for the database of `mongo_default`: link coverage now and over the
runs, the run history (kind, dry-run marker, state, counts, drift, duration,
the Airflow DAG run, Data Docs, backup, a way to roll the run back), a dry run's
findings, the review queue (filtered, paged by index, exported as CSV, decided
item by item or by importing a filled-in export: `decisions`) and the recent
alerts with where they went. It also serves each run's Data Docs. Every route
requires an Airflow login (the session cookie, or a bearer token); the page
loads nothing from any other host, and every size a request can ask for is
capped. Routes are plain functions: FastAPI runs them in its thread pool, so
the blocking MongoDB reads never stall the api-server's event loop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from linkage.airflow.urls import DOCS_ROUTE, PREFIX
from linkage.airflow.view.decisions import router
from linkage.airflow.view.deps import DECIDING_DAG, FilterDep, LinkageDep, UserDep, get_user, may_decide
from linkage.airflow.view.evidence import evidence_table, waterfall
from linkage.airflow.view.suggestions import router as suggestions
from linkage.core.mask import redact
from linkage.core.words import size
from linkage.relations import REGISTRY
from linkage.report import history as reports
from linkage.report.status import status
from linkage.review.pages import PAGE_SIZES, ReviewRow, review_csv, review_page
from linkage.store.review_queue import CATEGORIES, STATUSES

HERE = Path(__file__).parent
CHART = {"width": 640, "height": 160, "pad": 24}


app = FastAPI(title="Linkage", dependencies=[Depends(get_user)], docs_url=None, redoc_url=None, openapi_url=None)
app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
app.include_router(router)
app.include_router(suggestions)
pages = Environment(loader=PackageLoader("linkage.airflow.view", "templates"), autoescape=select_autoescape())
pages.filters["redact"] = lambda text: redact(str(text)) if text is not None else ""
pages.filters["size"] = size
pages.globals.update(evidence_table=evidence_table, waterfall=waterfall)


SizeParam = Annotated[int, Query(ge=1, le=max(PAGE_SIZES))]
#: A page cursor is a queue key: an item id and three short names.
CursorParam = Annotated[str | None, Query(max_length=2000)]


def delivery_channels() -> dict[str, bool]:
    """Which alert channels exist beyond the log (the notifier's connections)."""
    from linkage.airflow.notifier import configured_channels

    return configured_channels()


def coverage_chart(rows: list[reports.RunRow]) -> dict[str, Any]:
    """Coverage per relation over the runs (oldest on the left): each run a dot, joined by a line (one run
    alone is a dot, not an invisible line of one point)."""
    runs = [row for row in reversed(rows) if row.coverage and not row.dry_run]
    width, height, pad = CHART["width"], CHART["height"], CHART["pad"]
    step = (width - 2 * pad) / max(1, len(runs) - 1)
    def y(ratio: float) -> float:
        return round(pad + (1 - ratio) * (height - 2 * pad), 1)
    points = {relation.name: [(round(pad + i * step, 1), y(row.coverage[relation.name]))
                              for i, row in enumerate(runs) if relation.name in row.coverage]
              for relation in REGISTRY.relations()}
    lines = {name: " ".join(f"{x},{y}" for x, y in dots) for name, dots in points.items()}
    return {**CHART, "lines": lines, "points": points, "runs": len(runs)}


def _render(template: str, **values: Any) -> HTMLResponse:
    return HTMLResponse(pages.get_template(template).render(prefix=PREFIX, docs=DOCS_ROUTE, **values))


@app.get("/", response_class=HTMLResponse)
def page(lk: LinkageDep, selected: FilterDep, user: UserDep, size: SizeParam = 50, after: CursorParam = None,
         before: CursorParam = None) -> HTMLResponse:
    rows = reports.run_rows(lk, limit=30)
    dry = reports.dry_run_findings(lk, rows[0].run_id) if rows and rows[0].dry_run else None
    return _render("linkage.html", status=status(lk), runs=rows, chart=coverage_chart(rows), dry=dry,
                   review=review_page(lk, selected, size=size, after=after, before=before), selected=selected,
                   steps=list(REGISTRY), categories=CATEGORIES, statuses=STATUSES, sizes=PAGE_SIZES,
                   alerts=reports.alerts(lk), channels=delivery_channels(), can_decide=may_decide(user),
                   deciding_dag=DECIDING_DAG)


@app.get("/item", response_class=HTMLResponse)
def item_page(lk: LinkageDep, user: UserDep, item_id: Annotated[str, Query(max_length=1000)]) -> HTMLResponse:
    """One review item as the queue shows it (where a conflict's rivals link to), to decide it there."""
    found = lk.reviews.find([item_id]).get(item_id)
    shown = _render("item.html", item_id=item_id, item=ReviewRow.of(found) if found else None,
                    can_decide=may_decide(user), deciding_dag=DECIDING_DAG)
    shown.status_code = 200 if found else 404
    return shown


@app.get("/findings", response_class=HTMLResponse)
def findings(lk: LinkageDep, run_id: Annotated[str, Query(max_length=500)],
             rule: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    """What a dry run found, from its own record: the documents in drift (those of one expectation)."""
    return _render("findings.html", run_id=run_id, rule=rule, found=reports.dry_run_findings(lk, run_id, rule))


@app.get("/rollback", response_class=HTMLResponse)
def rollback_form(run_id: str, lk: LinkageDep) -> HTMLResponse:
    """The `linkage_rollback` form with the run filled in; the button triggers the DAG as the signed-in user."""
    found = lk.runs.find(run_id)
    return _render("rollback.html", run_id=run_id, run=lk.record(run_id) if found else None)


@app.get("/api/status")
def api_status(lk: LinkageDep) -> Any:
    """What `linkage status --json` prints."""
    return json.loads(json.dumps({"state": "succeeded", **status(lk)}, default=str))


@app.get("/api/runs")
def api_runs(lk: LinkageDep, limit: Annotated[int, Query(ge=1, le=500)] = 20,
             skip: Annotated[int, Query(ge=0)] = 0) -> Any:
    return [json.loads(row.model_dump_json()) for row in reports.run_rows(lk, limit, skip)]


@app.get("/api/review")
def api_review(lk: LinkageDep, selected: FilterDep, size: SizeParam = 50, after: CursorParam = None,
               before: CursorParam = None) -> Any:
    found = review_page(lk, selected, size=size, after=after, before=before)
    return {**found.model_dump(mode="json"), "after": found.after, "before": found.before}


@app.get("/review.csv")
def export_csv(lk: LinkageDep, selected: FilterDep) -> StreamingResponse:
    """The filter's items as `linkage review --csv` prints them (the same bytes), to fill in and import."""
    return StreamingResponse(review_csv(lk, selected), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="linkage-review.csv"'})


@app.get("/api/alerts")
def api_alerts(lk: LinkageDep) -> Any:
    return {"channels": delivery_channels(),
            "alerts": json.loads(json.dumps(reports.alerts(lk), default=str))}


@app.get("/docs/{path:path}")
def data_docs(path: str, lk: LinkageDep) -> FileResponse:
    """A file of the Data Docs directory (each run's site and the shared offline assets), never outside it."""
    root = lk.settings.docs_dir.resolve()
    target = (root / path).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(status_code=404, detail="no such Data Docs file")
    return FileResponse(target)
