"""The Linkage view's decisions: the JSON API behind its Save buttons, the CSV import, the history.

The signed-in Airflow user is the decider (`airflow:<name>`), when Airflow lets them decide (`DeciderDep`:
403 otherwise, nothing recorded). A request is all or nothing and
capped: at most `MAX_PER_REQUEST` decisions in `MAX_JSON_BYTES` of JSON, `MAX_UPLOAD_BYTES` of CSV, notes and
decisions as long as `linkage.review.intake` allows. A refusal is a 422 whose `refused` lists each bad
decision with its line (the CSV's line, or the decision's position in the request, from 1) and why.
The CSV must come as `text/csv` and the JSON as `application/json`: neither is a request another
site's page can make with the user's cookie (which Airflow sets SameSite=Lax besides).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from linkage.airflow.view.deps import DeciderDep, LinkageDep
from linkage.core.csvsafe import decoded
from linkage.review.intake import MAX_DECISION, MAX_NOTE, DecisionInput, DecisionsRefused, import_csv, record_decisions
from linkage.review.pages import ReviewRow
from linkage.run.session import Linkage
from linkage.store.decisions import DecisionRecord, DecisionStatus

MAX_PER_REQUEST = 1000
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
#: The largest JSON body: MAX_PER_REQUEST decisions with the longest item ids and notes fit.
MAX_JSON_BYTES = 2 * 1024 * 1024
router = APIRouter()


class Given(BaseModel):
    item_id: str = Field(max_length=1000)
    decision: str = Field(max_length=MAX_DECISION)
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class DecisionsBody(BaseModel):
    decisions: list[Given] = Field(min_length=1, max_length=MAX_PER_REQUEST)
    #: Where the decisions were made: the view's Save button says `view`.
    via: Literal["view", "api"] = "api"


def decider(user: Any) -> str:
    return f"airflow:{user.get_name()}"


def _answer(call: Any) -> JSONResponse:
    try:
        return JSONResponse(call().model_dump())
    except DecisionsRefused as refused:
        return JSONResponse({"detail": str(refused), "refused": [r.model_dump() for r in refused.refusals]},
                            status_code=422)


def shown(decision: DecisionRecord) -> dict[str, Any]:
    """A decision as the API shows it: everything but the document's state."""
    return decision.model_dump(mode="json", exclude={"state", "document_oid"}) | {
        "document_oid": str(decision.document_oid)}


def capped_json(request: Request) -> None:
    """Refuse a JSON body larger than any allowed request could be, before it is read."""
    if int(request.headers.get("content-length") or 0) > MAX_JSON_BYTES:
        raise HTTPException(status_code=413, detail=f"larger than {MAX_JSON_BYTES // 1024 // 1024} MB")


@router.post("/api/decisions", dependencies=[Depends(capped_json)])
def post_decisions(body: DecisionsBody, lk: LinkageDep, user: DeciderDep) -> JSONResponse:
    """Record decisions (all of them or none) as the signed-in user."""
    given = [DecisionInput(line=n, **g.model_dump()) for n, g in enumerate(body.decisions, start=1)]
    return _answer(lambda: record_decisions(lk, given, by=decider(user), via=body.via))


async def _capped_body(request: Request) -> bytes | None:
    """The request's body, or None once it is larger than the upload cap (reading stops there)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_UPLOAD_BYTES:
            return None
    return body


@router.post("/api/decisions.csv")
async def post_csv(request: Request, lk: LinkageDep, user: DeciderDep) -> JSONResponse:
    """Import a filled-in review export (`text/csv`), all of it or none, as the signed-in user."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "text/csv":
        return JSONResponse({"detail": "send the file as text/csv"}, status_code=415)
    body = await _capped_body(request)
    if body is None:
        return JSONResponse({"detail": f"larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB: split the file"},
                            status_code=413)
    try:
        text = decoded(body)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    by = decider(user)
    return await run_in_threadpool(lambda: _answer(lambda: import_csv(lk, text, by=by, via="csv")))


def _history(lk: Linkage, item_id: str | None, status: DecisionStatus | None, limit: int) -> list[DecisionRecord]:
    return lk.decisions.history(item_id)[:limit] if item_id else lk.decisions.recent(status, limit)


@router.get("/api/decisions")
def get_decisions(lk: LinkageDep, item_id: Annotated[str | None, Query(max_length=1000)] = None,
                  status: DecisionStatus | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
    """The decisions on an item (newest first), or the newest ones (of a status)."""
    return [shown(d) for d in _history(lk, item_id, status, limit)]


@router.get("/api/item")
def get_item(lk: LinkageDep, item_id: Annotated[str, Query(max_length=1000)]) -> Any:
    """One review item as the queue shows it, with every decision made on it."""
    found = lk.reviews.find([item_id]).get(item_id)
    if found is None:
        return JSONResponse({"detail": f"unknown item {item_id}"}, status_code=404)
    return {"item": ReviewRow.of(found).model_dump(mode="json"),
            "decisions": [shown(d) for d in lk.decisions.history(item_id)]}
