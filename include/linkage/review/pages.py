"""The review queue as people work through it: filtered pages, counts, and the CSV round trip's export.

A page is the next (or previous) `size` items in the queue's key order after the last one shown
and its counts are index range counts (`linkage.store.review_key`), so a page costs the same at a
hundred items or a hundred thousand. Everything here is ids, categories, reasons and the
candidates' non-PII attributes: never a phone or an email, nor a decided document's state.

The export (the view's download and `linkage review --csv`, the same bytes) has a row per item:
its `item_id`, its `candidates` (ids separated by `|`) and what a person needs to choose between
them, the model's suggestion (`suggested`, `match_probability`, `evidence`: the import ignores
them; a person copies `suggested` into `decision`), and `decision` and `note`: empty on an open
item, to fill in and import (`linkage.review.intake`), as decided on a decided one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from linkage.core.csvsafe import write_rows
from linkage.core.evidence import Evidence, Suggestion
from linkage.core.models import Candidate, Category, Ref
from linkage.relations import REGISTRY
from linkage.store.review_key import FIELD, Bounds, Where, counted, page_after, page_before, selection
from linkage.store.review_queue import CATEGORIES, OPEN, STATUSES, ShownDecision

if TYPE_CHECKING:
    from linkage.run.session import Linkage

PAGE_SIZES = (25, 50, 100, 500)
CANDIDATE_SEP = "|"
#: The item's field holding its suggestion's probability (`linkage.core.evidence`), for filtering.
PROBABILITY = "suggested_p"
EXPORT_COLUMNS = ["item_id", "step", "collection", "document_oid", "document_id", "category", "reason", "reopened",
                  "candidates", "more_candidates", "candidate_details", "other_side", "missing", "status", "decided",
                  "found_by", "run_id", "suggested", "match_probability", "evidence", "decision", "note"]


class ReviewFilter(BaseModel):
    step: str | None = None
    category: Category | None = None
    status: str | None = OPEN
    #: Only items whose suggestion is at least this probable (items without a suggestion are left out).
    min_probability: float | None = Field(default=None, ge=0, le=1)

    def ranges(self, status: str | None = None) -> list[Bounds]:
        """The ranges of the queue's key this filter selects (with another `status`, when given)."""
        return selection([(status or self.status, STATUSES), (self.step, list(REGISTRY)),
                          (self.category.value if self.category else None, CATEGORIES)])

    @property
    def where(self) -> Where:
        """What the filter asks of an item beside its key's ranges: a suggestion at least `min_probability`."""
        return {PROBABILITY: {"$gte": self.min_probability}} if self.min_probability is not None else None


class ReviewRow(BaseModel):
    """A review item as the view, its API and the export show it."""

    item_id: str
    step: str
    collection: str
    document_oid: str
    document_id: str | None = None
    category: str
    reason: str | None = None
    field: str | None = None
    reopened: str | None = None
    candidates: list[Candidate] = Field(default_factory=list)
    more_candidates: int = 0
    holders: list[Ref] = Field(default_factory=list)
    missing: str | None = None
    status: str
    decision: ShownDecision | None = None
    found_by: str | None = None
    run_id: str | None = None
    key: str
    #: The document beside its candidates, and the model's suggestion (`linkage.core.evidence`), once suggested.
    evidence: Evidence | None = None
    suggestion: Suggestion | None = None

    @classmethod
    def of(cls, item: dict[str, Any]) -> ReviewRow:
        return cls(item_id=str(item["_id"]), step=item["step"], collection=item["collection"],
                   document_oid=str(item.get("document_oid")), document_id=item.get("document_id"),
                   category=item["category"], reason=item.get("reason"), field=item.get("field"),
                   reopened=item.get("reopened"), candidates=item.get("candidates") or [],
                   more_candidates=item.get("more_candidates") or 0, holders=item.get("holders") or [],
                   missing=item.get("missing"), status=item["status"], found_by=item.get("found_by"),
                   run_id=item.get("run_id"), key=item[FIELD],
                   evidence=Evidence.model_validate(item["evidence"]) if item.get("evidence") else None,
                   suggestion=Suggestion.model_validate(item["suggestion"]) if item.get("suggestion") else None,
                   decision=ShownDecision.model_validate(item["decision"]) if item.get("decision") else None)

    @property
    def decided_as(self) -> str:
        """The item's decision as the `decision` column says it (a link's target, `none` or `clear`), or empty."""
        d = self.decision
        return "" if d is None else (d.target or "") if d.kind == "link" else d.kind

    def exported(self) -> dict[str, str]:
        """As a row of the export: text cells; the suggestion (`suggested`, `match_probability`, `evidence`) for a
        person to copy into `decision`; `decision` and `note` as decided (empty on an open item, to fill in)."""
        details = [" ".join([c.id, *(f"{k}={v}" for k, v in c.facts.items())]) for c in self.candidates]
        d, s = self.decision, self.suggestion
        return {"item_id": self.item_id, "step": self.step, "collection": self.collection,
                "document_oid": self.document_oid, "document_id": self.document_id or "", "category": self.category,
                "reason": self.reason or "", "reopened": self.reopened or "",
                "candidates": CANDIDATE_SEP.join(c.id for c in self.candidates),
                "more_candidates": str(self.more_candidates or ""), "candidate_details": "; ".join(details),
                "other_side": " ".join(f"{h.collection}:{h.id}" for h in self.holders), "missing": self.missing or "",
                "status": self.status, "decided": " ".join(filter(None, (d.kind, d.target, "by", d.by))) if d else "",
                "found_by": self.found_by or "", "run_id": self.run_id or "", "suggested": s.target if s else "",
                "match_probability": f"{s.probability:.3f}" if s else "", "evidence": s.evidence_text if s else "",
                "decision": self.decided_as, "note": (d.note or "") if d else ""}


class ReviewPage(BaseModel):
    """One page of a filter's items: where it starts in the selection (`first`, from 1), how many there are."""

    items: list[ReviewRow]
    total: int
    first: int
    size: int
    counts: dict[str, int]

    @property
    def after(self) -> str | None:
        """The cursor of the next page, if there is one."""
        return self.items[-1].key if self.items and self.first - 1 + len(self.items) < self.total else None

    @property
    def before(self) -> str | None:
        """The cursor of the previous page, if there is one."""
        return self.items[0].key if self.items and self.first > 1 else None


def review_page(lk: Linkage, selected: ReviewFilter, *, size: int = 50, after: str | None = None,
                before: str | None = None) -> ReviewPage:
    """The page after `after` (or before `before`; the first page without either), with the counts by status."""
    ranges, size, where = selected.ranges(), size if size in PAGE_SIZES else 50, selected.where
    found = page_before(lk.reviews.coll, ranges, before, size, where) if before else \
        page_after(lk.reviews.coll, ranges, after, size, where)
    items = [ReviewRow.of(item) for item in found]
    first = counted(lk.reviews.coll, ranges, before=items[0].key, where=where) + 1 if items else 1
    counts = {status: counted(lk.reviews.coll, selected.ranges(status), where=where) for status in STATUSES}
    total = counts[selected.status] if selected.status else sum(counts.values())
    return ReviewPage(items=items, total=total, first=first, size=size, counts=counts)


def review_csv(lk: Linkage, selected: ReviewFilter) -> Iterator[str]:
    """The selected review items as CSV, a line at a time (the whole queue never sits in memory)."""
    return write_rows(EXPORT_COLUMNS, (ReviewRow.of(item).exported()
                                       for item in lk.reviews.items(selected.ranges(), selected.where)))
