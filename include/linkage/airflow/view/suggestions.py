"""The Linkage view's bulk acceptance: `POST /linkage/api/suggestions/accept` records the suggestion of every open
item of a filter at or above a probability as the signed-in user's decisions (`linkage.review.acceptance`).

The request names the filter (`step`, `category`, `min_probability`) and the count the person was shown
(`expected`): a filter that holds another number now is refused with 409 and the count it holds (someone
decided meanwhile, or a run changed the queue), so a person never accepts what they did not see. All or
nothing, at most `MAX_DECISIONS` at once, a small JSON body; a refusal is a 422 as for any decision.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from linkage.airflow.view.decisions import decider
from linkage.airflow.view.deps import DeciderDep, FilterDep, LinkageDep, review_filter
from linkage.review.acceptance import CountChanged, accept_suggestions
from linkage.review.intake import DecisionsRefused
from linkage.review.quality import quality
from linkage.store.review_key import counted
from linkage.store.review_queue import OPEN, STATUSES

#: The largest body the route reads: a filter and a count.
MAX_BODY_BYTES = 4096
router = APIRouter()


class AcceptBody(BaseModel):
    step: str | None = Field(default=None, max_length=100)
    category: str | None = Field(default=None, max_length=100)
    min_probability: float = Field(ge=0, le=1)
    #: How many items the person was shown the filter holds.
    expected: int = Field(ge=1, le=10_000_000)


def small_body(request: Request) -> None:
    """Refuse a body larger than a filter and a count could be, before it is read."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise HTTPException(status_code=413, detail=f"larger than {MAX_BODY_BYTES} bytes")


@router.post("/api/suggestions/accept", dependencies=[Depends(small_body)])
def accept(body: AcceptBody, lk: LinkageDep, user: DeciderDep) -> JSONResponse:
    """Accept the filter's suggestions as the signed-in user's decisions (via `view`), or refuse them all."""
    selected = review_filter(step=body.step, category=body.category, status_=OPEN)
    try:
        accepted = accept_suggestions(lk, selected, body.min_probability, by=decider(user), via="view",
                                      expected=body.expected)
    except CountChanged as changed:
        return JSONResponse({"detail": str(changed), "held": changed.held}, status_code=409)
    except DecisionsRefused as refused:
        return JSONResponse({"detail": str(refused), "refused": [r.model_dump() for r in refused.refusals]},
                            status_code=422)
    return JSONResponse({**accepted.model_dump(), "left": accepted.left})


@router.get("/api/review/counts")
def get_counts(lk: LinkageDep, selected: FilterDep) -> dict[str, object]:
    """The filter's counts by status and its total (what the page's counters show after a Save)."""
    found = {status: counted(lk.reviews.coll, selected.ranges(status), where=selected.where) for status in STATUSES}
    return {"counts": found, "total": found[selected.status] if selected.status else sum(found.values())}


@router.get("/api/quality")
def get_quality(lk: LinkageDep) -> dict[str, object]:
    """How often people accepted the suggestions, by probability band (and, on seeded data, precision and
    recall per threshold): what `linkage review --quality` prints. It walks the suggested items once, so the
    page asks for it only when a person opens its table."""
    found = quality(lk)
    return {**found.model_dump(), "bands": [{**b.model_dump(), "label": b.label, "rate": b.rate} for b in found.bands]}
