"""How good the suggestions are: how often people accepted them, and, against a known truth, how precise.

`acceptance`: for the decided items that carried a suggestion, how many decisions were the suggestion (the
same candidate, or `none` for `none`), by probability band. `accuracy`: when a truth table exists (`linkage
seed` plants one: `linkage.dev.seed_truth`), per threshold, the suggestions at or above it that are right (tp)
and wrong (fp), the truth's items without a right one there (fn), precision, recall and F1, and the recall
of the evident items alone, in the style of Splink's `accuracy_analysis_from_labels_table`. Both walk the
queue once, holding counters only (and the truth table, a row per planted item). `linkage review --quality`
prints them; the Linkage view shows them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from linkage.core.evidence import NONE
from linkage.dev.seed_truth import TRUTH, truth_by_document
from linkage.store.decisions import DecisionKind
from linkage.store.review_queue import DECIDED

if TYPE_CHECKING:
    from linkage.run.session import Linkage

#: Probability bands (lower bounds) the acceptance is counted in.
BANDS = (0.0, 0.5, 0.8, 0.9, 0.97)
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


class Band(BaseModel):
    low: float
    high: float | None
    decided: int = 0
    accepted: int = 0

    @property
    def label(self) -> str:
        return f"≥ {self.low:g}" if self.high is None else f"{self.low:g}–{self.high:g}" if self.low else \
            f"< {self.high:g}"

    @property
    def rate(self) -> float | None:
        return self.accepted / self.decided if self.decided else None


class Accuracy(BaseModel):
    threshold: float
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    recall_evident: float | None


class Quality(BaseModel):
    bands: list[Band]
    #: None when there is no truth table.
    accuracy: list[Accuracy] | None = None
    truth_items: int = 0
    evident_items: int = 0


def _accepted(item: dict[str, Any]) -> bool:
    decision, target = item.get("decision") or {}, item["suggestion"].get("target")
    if decision.get("kind") == DecisionKind.NONE:
        return bool(target == NONE)
    return bool(decision.get("kind") == DecisionKind.LINK and decision.get("target") == target)


def _band(p: float) -> int:
    return max(i for i, low in enumerate(BANDS) if p >= low)


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def quality(lk: Linkage) -> Quality:
    """Acceptance by band over the decided items, and accuracy against the truth where there is one."""
    bands = [Band(low=low, high=BANDS[i + 1] if i + 1 < len(BANDS) else None) for i, low in enumerate(BANDS)]
    truth = truth_by_document(lk.db) if TRUTH in lk.db.list_collection_names() else {}
    right, wrong = Counter[int](), Counter[int]()  # per threshold's index
    right_evident = Counter[int]()
    for item in lk.reviews.coll.find({"suggestion": {"$exists": True}},
                                     {"status": 1, "step": 1, "document_id": 1, "decision": 1, "suggestion": 1}):
        p = float(item["suggestion"].get("probability") or 0)
        if item.get("status") == DECIDED and item.get("decision"):
            band = bands[_band(p)]
            band.decided += 1
            band.accepted += _accepted(item)
        known = truth.get((item["step"], item.get("document_id")))
        if known is None:
            continue
        correct = item["suggestion"].get("target") == known["truth"]
        for i, threshold in enumerate(THRESHOLDS):
            if p >= threshold:
                (right if correct else wrong)[i] += 1
                right_evident[i] += correct and bool(known["evident"])
    evident = sum(1 for row in truth.values() if row["evident"])
    if not truth:
        return Quality(bands=bands)
    rows = []
    for i, threshold in enumerate(THRESHOLDS):
        tp, fp = right[i], wrong[i]
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, len(truth))
        f1 = round(2 * precision * recall / (precision + recall), 4) if precision and recall else None
        rows.append(Accuracy(threshold=threshold, tp=tp, fp=fp, fn=len(truth) - tp, precision=precision,
                             recall=recall, f1=f1, recall_evident=_ratio(right_evident[i], evident)))
    return Quality(bands=bands, accuracy=rows, truth_items=len(truth), evident_items=evident)


def quality_lines(found: Quality) -> list[str]:
    """The report as `linkage review --quality` prints it."""
    lines = ["suggestions accepted by people, by match probability:"]
    for band in found.bands:
        rate = f"{band.rate:.0%}" if band.rate is not None else "-"
        lines.append(f"  {band.label:>10}  decided {band.decided:6,}  accepted {band.accepted:6,}  {rate:>5}")
    if found.accuracy is None:
        return [*lines, "no truth table (linkage seed plants one): precision and recall not measured"]
    lines.append(f"against the seeded truth ({found.truth_items:,} items, {found.evident_items:,} evident):")
    lines.append("  threshold     tp     fp     fn  precision  recall      f1  recall(evident)")
    for row in found.accuracy:
        cells = [f"{v:.3f}" if v is not None else "-" for v in (row.precision, row.recall, row.f1,
                                                                   row.recall_evident)]
        lines.append(f"  {row.threshold:>9g} {row.tp:6,} {row.fp:6,} {row.fn:6,} {cells[0]:>10} {cells[1]:>7} "
                     f"{cells[2]:>7} {cells[3]:>16}")
    return lines
