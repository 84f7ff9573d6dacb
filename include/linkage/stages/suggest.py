"""The `suggest` stage: refit the suggestion model and write evidence and a suggestion on the open review items.

After a run concludes (and in every run but a dry one), per step with comparators (`StepSpec.comparators`):

1. the queue's ambiguous and conflict items, open and decided, are compared with their candidates a batch at
   a time and counted by shape (`linkage.review.suggestion_model`); a conflict's items are grouped by the one candidate
   they want (its group: the users wanting one profile, exclusive like an ambiguous item's candidates);
2. m, u and lam are re-estimated by EM (decided items are labels), and the fit is stored in
   `linkage_model` (its parameters, pairs, labels, iterations, when);
3. every open item of the step gets its `evidence`; the ambiguous and conflict ones a `suggestion` (the argmax
   over their candidates and `none`, never a link the step's rules would refuse) and `suggested_p`. The
   writes go through the guarded review queue; nothing is written to the app.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pymongo import ReplaceOne, UpdateOne

from linkage.core.comparing import Comparator
from linkage.core.evidence import NONE, Suggestion, Weight
from linkage.core.models import Category
from linkage.core.words import tally
from linkage.mongo import bulk
from linkage.relations import REGISTRY
from linkage.review.evidencing import DECIDABLE, Compared, batches, compared
from linkage.review.suggestion_model import (
    LABELS_TO_SETTLE,
    NONE_LABEL,
    REFUSED_BITS,
    RULED_OUT,
    Label,
    Model,
    Shape,
    Vector,
    capped,
    fit,
    none_weights,
)
from linkage.store.review_key import selection
from linkage.store.review_queue import CATEGORIES, DECIDED, OPEN, STATUSES

if TYPE_CHECKING:
    from linkage.run.session import Linkage

log = logging.getLogger("linkage.suggest")
MODEL = "model"
#: A conflict's group member: its item, its vector against the candidate, its own label (0: it was linked).
Member = tuple[str, Vector, Label]


def _ranges(step: str, statuses: Iterable[str], categories: Iterable[str] | None) -> list[Any]:
    chosen: list[str | None] = list(categories) if categories else [None]
    return [r for status in statuses for category in chosen
            for r in selection([(status, STATUSES), (step, list(REGISTRY)), (category, CATEGORIES)])]


class StepFit:
    """One comparator's items of one step, by shape, and its conflicts' groups; then its fitted model."""

    def __init__(self, step: str, comparator: Comparator) -> None:
        self.step, self.comparator = step, comparator
        self.shapes: Counter[Shape] = Counter()
        self.groups: dict[str, list[Member]] = {}
        self.model = Model.prior(comparator.fields)
        #: Per shape (its candidates' vectors), how many items of it people decided.
        self.labelled: Counter[tuple[Vector, ...]] = Counter()
        self.id = ""

    def add(self, one: Compared, refused: set[tuple[str, str]]) -> None:
        """Count the item's shape (a conflict: in its candidate's group). A candidate the rules refuse is known
        not to be the match: an item whose candidates are all refused is counted as such (`RULED_OUT`)."""
        if not one.vectors:
            return
        out = {i for i, cid in enumerate(one.ids) if (one.id, cid) in refused}
        if out and len(out) == len(one.ids):
            self.shapes[(tuple(one.vectors), RULED_OUT)] += 1
        elif one.category == Category.CONFLICT and len(one.ids) == 1:
            self.groups.setdefault(one.ids[0], []).append((one.id, one.vectors[0], one.label()))
        else:
            label = one.label()
            kept = [i for i in range(len(one.ids)) if i not in out]
            vectors = tuple(one.vectors[i] for i in kept)
            self.shapes[(vectors, kept.index(label) if label is not None and label in kept else
                         None if label is None or label >= 0 else NONE_LABEL)] += 1

    def group_shapes(self) -> Counter[Shape]:
        """Each conflict's group as an item: its users' vectors, labelled when a person linked one of them (or
        said `none` for all)."""
        shapes: Counter[Shape] = Counter()
        for members in self.groups.values():
            members.sort(key=lambda m: m[0])
            labels = [m[2] for m in members]
            label = next((i for i, lab in enumerate(labels) if lab == 0), None)
            if label is None and all(lab == NONE_LABEL for lab in labels):
                label = NONE_LABEL
            shapes[(tuple(m[1] for m in members), label)] += 1
        return shapes

    def record(self, lk: Linkage, run_id: str, seconds: float, iterations: int) -> dict[str, Any]:
        shapes = self.shapes + self.group_shapes()
        self.id = f"{run_id}:{self.step}:{self.comparator.collection}"
        doc = {"_id": self.id, "step": self.step, "collection": self.comparator.collection, "run_id": run_id,
               "at": lk.clock(), "parameters": self.model.model_dump(), "iterations": iterations,
               "items": sum(shapes.values()), "pairs": sum(len(s[0]) * n for s, n in shapes.items()),
               "labels": sum(n for s, n in shapes.items() if s[1] is not None and s[1] != RULED_OUT),
               "ruled_out": shapes_ruled_out(shapes),
               "seconds": round(seconds, 3)}
        bulk.write(lk.guarded(lk.bookkeeping(MODEL)), [ReplaceOne({"_id": self.id}, doc,
                                                                                     upsert=True)], 1)
        return {k: v for k, v in doc.items() if k not in ("parameters", "at", "_id")} | {"model": self.id}


def shapes_ruled_out(shapes: Counter[Shape]) -> int:
    """Items whose every candidate the rules refuse (known not to be their match, though nobody decided)."""
    return sum(n for s, n in shapes.items() if s[1] == RULED_OUT)


def fit_step(lk: Linkage, step: str, run_id: str) -> dict[str, StepFit]:
    """Every comparator's fit for `step` (per collection), stored in `linkage_model`."""
    fits = {c.collection: StepFit(step, c) for c in REGISTRY[step].comparators}
    for batch in batches(lk, _ranges(step, (OPEN, DECIDED), DECIDABLE)):
        found = compared(lk, step, batch)
        refused = _refusals(lk, step, found)
        for one in found:
            fits[one.comparator.collection].add(one, refused)
    for one_fit in fits.values():
        started = time.monotonic()
        shapes = one_fit.shapes + one_fit.group_shapes()
        one_fit.model, iterations = fit(one_fit.comparator.fields, shapes)
        for (vectors, label), n in shapes.items():
            one_fit.labelled[vectors] += n if label is not None and label != RULED_OUT else 0
        summary = one_fit.record(lk, run_id, time.monotonic() - started, iterations)
        log.info("suggestion model %s: fitted on %s items (%s pairs, %s decided by people) in %s iterations, "
                 "%.3f s", one_fit.id, f"{summary['items']:,}", f"{summary['pairs']:,}", f"{summary['labels']:,}",
                 iterations, summary["seconds"])
    return fits


def _refusals(lk: Linkage, step: str, batch: list[Compared]) -> set[tuple[str, str]]:
    """The (item, candidate) links among this batch's decidable items that the step's rules would refuse."""
    refused: set[tuple[str, str]] = set()
    for collection in {one.comparator.collection for one in batch}:
        subject = REGISTRY.subject(step, collection)
        pairs = [(one, cid) for one in batch if one.comparator.collection == collection
                 and one.category in DECIDABLE for cid in one.ids]
        if subject is None or not pairs:
            continue
        reasons = subject.check(lk.db, [(one.doc, cid) for one, cid in pairs])
        refused |= {(one.id, cid) for (one, cid), reason in zip(pairs, reasons, strict=True) if reason}
    return refused


def suggestion(one: Compared, one_fit: StepFit, refused: set[tuple[str, str]], group: list[Member] | None,
               at: Any) -> Suggestion | None:
    """The argmax over the item's candidates and `none` (for a conflict: over its group's users and nobody)."""
    if not one.vectors:
        return None
    if group is not None and len(one.ids) == 1 and one.id in [m[0] for m in group]:
        vectors, mine = [m[1] for m in group], [m[0] for m in group].index(one.id)
        out = {mine} if (one.id, one.ids[0]) in refused else set()
    else:
        vectors, mine = list(one.vectors), -1
        out = {i for i, cid in enumerate(one.ids) if (one.id, cid) in refused}
    model = one_fit.model
    p = model.posterior(vectors, out)
    best = max(range(len(p)), key=lambda i: p[i])
    p_none = 1 - sum(p)
    chosen = best if (mine < 0 or best == mine) and p[best] > p_none else None
    if chosen is not None:
        target, probability = one.ids[0] if mine >= 0 else one.ids[chosen], p[chosen]
        weights = model.weights(vectors[chosen], len(vectors))
        if one_fit.labelled[tuple(vectors)] < LABELS_TO_SETTLE:
            probability, cap = capped(one_fit.comparator.fields, model, vectors, chosen, out, probability)
            weights += [cap] if cap else []
    else:
        target, probability = NONE, 1 - p[mine] if mine >= 0 else p_none
        live = [i for i in range(len(vectors)) if i not in out]
        weights = none_weights(model.weights(vectors[mine if mine >= 0 and mine in live else best], len(vectors)),
                               probability) if live else [Weight(field="rule", level="refused", weight=REFUSED_BITS)]
    return Suggestion(target=target, probability=round(min(max(probability, 0.0), 1.0), 4), weights=weights,
                      model=one_fit.id, at=at)


def _written(lk: Linkage, step: str, fits: dict[str, StepFit], batch: list[dict[str, Any]]) -> Counter[str]:
    """Evidence on every item of the batch; a suggestion on its ambiguous and conflict ones."""
    found, now, ops, counts = compared(lk, step, batch), lk.clock(), [], Counter[str]()
    refused = _refusals(lk, step, found)
    for one in found:
        one_fit = fits[one.comparator.collection]
        group = one_fit.groups.get(one.ids[0]) if one.category == Category.CONFLICT and len(one.ids) == 1 else None
        if group:
            one.evidence.rivals = [m[0] for m in group if m[0] != one.id]
        made = suggestion(one, one_fit, refused, group, now) \
            if one.category in DECIDABLE else None
        update: dict[str, Any] = {"$set": {"evidence": one.evidence.model_dump()}}
        if made:
            update["$set"] |= {"suggestion": made.model_dump(), "suggested_p": made.probability}
            counts[f"{one.category} suggested"] += 1
            counts[f"{one.category} at p >= 90%"] += made.probability >= 0.9  # no "." in a key: FerretDB refuses it
        else:
            update["$unset"] = {"suggestion": "", "suggested_p": ""}
        ops.append(UpdateOne({"_id": one.id, "status": OPEN}, update))
    if ops:
        bulk.write(lk.guarded(lk.reviews.coll), ops, lk.settings.write_chunk)
    counts["evidence"] += len(ops)
    return counts


def suggest_queue(lk: Linkage, steps: Iterable[str], run_id: str) -> dict[str, Any]:
    """Refit each step's model and write evidence and suggestions on its open items; what was done, per step."""
    outcome: dict[str, Any] = {}
    for step in steps:
        if not REGISTRY[step].comparators:
            continue
        started = time.monotonic()
        fits = fit_step(lk, step, run_id)
        counts: Counter[str] = Counter()
        for batch in batches(lk, _ranges(step, (OPEN,), None)):
            counts += _written(lk, step, fits, batch)
        outcome[step] = {"models": [f.id for f in fits.values()], **counts,
                         "seconds": round(time.monotonic() - started, 3)}
    return outcome


def suggest(lk: Linkage, run_id: str) -> dict[str, Any]:
    """The `suggest` stage of a run: over the run's steps; what it did goes in the run's record."""
    outcome = suggest_queue(lk, lk.record(run_id).params.steps, run_id)
    lk.runs.update(run_id, suggestions=outcome)
    for step, done in outcome.items():
        log.info("suggestions of %s, %s: %s", run_id, step,
                 tally({k: n for k, n in done.items() if isinstance(n, int) and k != "evidence"}) or "none")

    return outcome
