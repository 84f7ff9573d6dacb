"""The Linkage view: a FastAPI app the plugin mounts in Airflow's api-server at `/linkage`.

It shows, for the database of `mongo_default`: link coverage now and over the
runs, the run history (kind, dry-run marker, state, counts, drift, duration,
the Airflow DAG run, Data Docs, backup, a way to roll the run back), the review
queue (filtered, paged, exported as CSV) and the recent alerts with where they
went. It also serves each run's Data Docs. Every route requires an Airflow
login (the session cookie, or a bearer token); the page loads nothing from any
other host. Routes are plain functions: FastAPI runs them in its thread pool,
so the blocking MongoDB reads never stall the api-server's event loop.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from linkage import reports
from linkage.airflow.urls import DOCS_ROUTE, PREFIX
from linkage.handle import Linkage
from linkage.masking import redact
from linkage.models import Category
from linkage.status import status
from linkage.steps import REGISTRY

HERE = Path(__file__).parent
CHART = {"width": 640, "height": 160, "pad": 24}


def _authenticated() -> Any:
    from airflow.api_fastapi.core_api.security import get_user

    return Depends(get_user)


app = FastAPI(title="Linkage", dependencies=[_authenticated()], docs_url=None, redoc_url=None, openapi_url=None)
app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
pages = Environment(loader=PackageLoader("linkage.airflow.view", "templates"), autoescape=select_autoescape())
pages.filters["redact"] = lambda text: redact(str(text)) if text is not None else ""


@functools.cache
def _linkage(uri: str, db: str) -> Linkage:
    """One engine handle per database the connection names, kept for the api-server's lifetime (its
    MongoClient pools connections for every request)."""
    from linkage.airflow.connection import open_linkage

    return open_linkage()


def linkage() -> Linkage:
    """The engine on `mongo_default` as it is configured now (an edited connection takes effect)."""
    from linkage.airflow.connection import connection_target

    return _linkage(*connection_target())


LinkageDep = Annotated[Linkage, Depends(linkage)]
StatusParam = Annotated[str | None, Query(alias="status")]


def registered_step(step: str | None = None) -> str | None:
    """The `step` filter: a registered step, or none (an unknown one is refused, not matched against nothing)."""
    if step and step not in REGISTRY:
        raise HTTPException(status_code=422, detail=f"unknown step {step!r}: choose from {', '.join(REGISTRY)}")
    return step or None


StepParam = Annotated[str | None, Depends(registered_step)]
PageParam = Annotated[int, Query(alias="page", ge=1)]


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
def page(lk: LinkageDep, step: StepParam = None, category: Category | None = None,
         status_: StatusParam = "open", page_: PageParam = 1,
         size: int = 50) -> HTMLResponse:
    selected = reports.ReviewFilter(step=step, category=category, status=status_ or None)
    rows = reports.run_rows(lk, limit=30)
    return _render("linkage.html", status=status(lk), runs=rows, chart=coverage_chart(rows),
                   review=reports.review_page(lk, selected, page_, size), selected=selected,
                   steps=list(REGISTRY), categories=list(Category), statuses=reports.STATUSES,
                   sizes=reports.PAGE_SIZES, alerts=reports.alerts(lk), channels=delivery_channels())


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
def api_review(lk: LinkageDep, step: StepParam = None, category: Category | None = None,
               status_: StatusParam = "open", page_: PageParam = 1,
               size: int = 50) -> Any:
    selected = reports.ReviewFilter(step=step, category=category, status=status_ or None)
    return reports.review_page(lk, selected, page_, size).model_dump()


@app.get("/review.csv")
def review_csv(lk: LinkageDep, step: StepParam = None, category: Category | None = None,
               status_: StatusParam = "open") -> StreamingResponse:
    selected = reports.ReviewFilter(step=step, category=category, status=status_ or None)
    return StreamingResponse(reports.review_csv(lk, selected), media_type="text/csv",
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
