"""A batch of review items beside their documents and candidates: what `linkage.stages.suggest` compares and writes.

The items of one step are read a batch at a time with their documents (by `document_oid`) and their
candidates (by the comparator's key), each once per batch; the comparisons are the step's own
(`StepSpec.comparators`). Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from linkage.core.comparing import Comparator
from linkage.core.evidence import Comparison, Evidence
from linkage.core.models import Category
from linkage.mongo.lookups import by_keys
from linkage.relations import REGISTRY
from linkage.review.suggestion_model import NONE_LABEL, Label, Vector
from linkage.store.decisions import DecisionKind
from linkage.store.review_queue import DECIDED

if TYPE_CHECKING:
    from linkage.run.session import Linkage

#: Items read, compared and written at a time.
BATCH = 500
DECIDABLE = (Category.AMBIGUOUS.value, Category.CONFLICT.value)


@dataclass
class Compared:
    """One review item beside its document and candidates."""

    item: dict[str, Any]
    comparator: Comparator
    doc: dict[str, Any]
    evidence: Evidence
    #: Candidate ids in the item's order (those found), and their level vectors.
    ids: list[str] = field(default_factory=list)
    vectors: list[Vector] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.item["_id"])

    @property
    def category(self) -> str:
        return str(self.item["category"])

    def label(self) -> Label:
        """A decided item as a label: the index of the candidate chosen, `none`, or None (not a label)."""
        decision = self.item.get("decision") or {}
        if self.item.get("status") != DECIDED:
            return None
        if decision.get("kind") == DecisionKind.NONE:
            return NONE_LABEL
        target = decision.get("target")
        return self.ids.index(target) if decision.get("kind") == DecisionKind.LINK and target in self.ids else None


def compared(lk: Linkage, step: str, items: list[dict[str, Any]]) -> list[Compared]:
    """These items of `step` beside their documents and candidates (items without a comparator, or whose
    document is gone, are left out)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(item.get("collection") or "", []).append(item)
    found: list[Compared] = []
    for collection, group in groups.items():
        comparator = REGISTRY.comparator(step, collection)
        if comparator is None:
            continue
        docs = {d["_id"]: d for d in lk.db[collection].find({"_id": {"$in": [i["document_oid"] for i in group]}})}
        wanted = {c["id"] for i in group for c in i.get("candidates") or []}
        targets = {t[comparator.key]: t for t in by_keys(lk.db[comparator.target], comparator.key, wanted, None,
                                                           range_limit=None)}
        for item in group:
            doc = docs.get(item["document_oid"])
            if doc is None:
                continue
            found.append(_compare(item, comparator, doc, targets, lk))
    return found


def _compare(item: dict[str, Any], comparator: Comparator, doc: dict[str, Any], targets: dict[str, Any],
             lk: Linkage) -> Compared:
    tz = lk.settings.tz
    one = Compared(item=item, comparator=comparator, doc=doc, evidence=Evidence(facts=comparator.facts(doc, tz)))
    for candidate in item.get("candidates") or []:
        target = targets.get(candidate["id"])
        comparisons: list[Comparison] = comparator.compare(doc, target, tz) if target is not None else []
        one.evidence.candidates[candidate["id"]] = comparisons
        if target is not None:
            one.ids.append(candidate["id"])
            one.vectors.append(comparator.levels(comparisons))
    return one


def batches(lk: Linkage, ranges: list[Any]) -> Iterator[list[dict[str, Any]]]:
    """The queue's items in these ranges, `BATCH` at a time."""
    batch: list[dict[str, Any]] = []
    for item in lk.reviews.items(ranges):
        batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
