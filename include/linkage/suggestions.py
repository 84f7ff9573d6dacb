"""The suggestion model: Fellegi-Sunter with exclusivity inside a review item, fitted by EM.

Each compared field (`linkage.comparing.FieldSpec`) has, per level, an m probability (among matching
pairs) and a u probability (among pairs that do not match). A candidate's Bayes factor is the product of
m/u over its fields; its weights are their log2 (a Splink waterfall). A review item (or a conflict's group:
the users wanting one profile) holds at most one match among its candidates, possibly none: with `lam`
the probability that it holds one, each candidate's prior is lam/k and `none`'s is 1-lam, and the
posterior is normalised over the item, so two indistinguishable candidates each get about a half.

u is estimated as Splink does (`estimate_u_using_random_sampling`): from pairs of documents drawn at
random, smoothed by the prior (`u_from_sample`), and held fixed; m and lam start from the priors and are
re-estimated by EM over the queue's items (`fit`), where a decided item is a label: its responsibilities
are fixed (the chosen candidate matched, the others did not; `none`: none did). Items are counted by their
shape (the candidates' level vectors and the label), so a fit's memory is the number of distinct shapes,
not the queue's size.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel

from linkage.comparing import FieldSpec
from linkage.evidence import Level, Weight

Vector = tuple[Level, ...]
#: An item's label: the index of the chosen candidate, NONE_LABEL for `none`, None when undecided.
Label = int | None
Shape = tuple[tuple[Vector, ...], Label]
NONE_LABEL = -1
#: How many pairs' worth of belief the priors carry against the data.
PRIOR_STRENGTH = 5.0
U_PRIOR_STRENGTH = 50.0
LAM_PRIOR = 0.9
#: A level no pair has shown still has this much probability (no infinite weights).
FLOOR = 1e-6
#: The weight shown for a link the rules refuse (the candidate is out, whatever its evidence).
REFUSED_BITS = -30.0


class FieldParams(BaseModel):
    m: dict[str, float]
    u: dict[str, float]


class Model(BaseModel):
    """Fitted parameters: per field, m and u per level; `lam`, the chance an item holds its match."""

    fields: dict[str, FieldParams]
    lam: float = LAM_PRIOR

    @classmethod
    def prior(cls, specs: Sequence[FieldSpec], u: Mapping[str, Mapping[str, float]] | None = None) -> Model:
        return cls(fields={f.name: FieldParams(m={str(k): v for k, v in f.m.items()},
                                               u=dict(u[f.name]) if u else {str(k): v for k, v in f.u.items()})
                           for f in specs})

    def weights(self, vector: Vector, k: int) -> list[Weight]:
        """The prior's weight (a candidate of k against `none`), then each field's: log2 Bayes factors."""
        prior = math.log2(self.lam / k / (1 - self.lam))
        return [Weight(field="prior", weight=round(prior, 3))] + [
            Weight(field=name, level=str(level),
                   weight=round(math.log2(max(p.m.get(level, FLOOR), FLOOR) / max(p.u.get(level, FLOOR), FLOOR)), 3))
            for (name, p), level in zip(self.fields.items(), vector, strict=True)]

    def odds(self, vector: Vector, k: int) -> float:
        """A candidate's posterior odds against `none` (its prior times its Bayes factor)."""
        return 2 ** sum(w.weight for w in self.weights(vector, k))

    def posterior(self, vectors: Sequence[Vector], refused: Iterable[int] = ()) -> list[float]:
        """Per candidate the probability it is the match, normalised with `none` (the rest) over the item; a
        refused candidate (a link the rules would not write) is out."""
        out = set(refused)
        odds = [0.0 if i in out else self.odds(v, len(vectors)) for i, v in enumerate(vectors)]
        total = 1 + sum(odds)
        return [o / total for o in odds]


def u_from_sample(specs: Sequence[FieldSpec], sampled: Counter[Vector]) -> dict[str, dict[str, float]]:
    """u per field and level from the level vectors of random pairs, smoothed by the priors."""
    n = sum(sampled.values())
    u: dict[str, dict[str, float]] = {}
    for i, spec in enumerate(specs):
        seen = Counter[Level]()
        for vector, count in sampled.items():
            seen[vector[i]] += count
        u[spec.name] = {str(level): max(FLOOR, (seen[level] + U_PRIOR_STRENGTH * prior) / (n + U_PRIOR_STRENGTH))
                        for level, prior in spec.u.items()}
    return u


def _responsibilities(model: Model, vectors: tuple[Vector, ...], label: Label) -> list[float]:
    if label is None:
        return model.posterior(vectors)
    return [1.0 if i == label else 0.0 for i in range(len(vectors))]


def _m_step(specs: Sequence[FieldSpec], shapes: Counter[Shape], model: Model) -> Model:
    sums: dict[str, dict[str, float]] = {f.name: dict.fromkeys(map(str, f.m), 0.0) for f in specs}
    matched, items = 0.0, 0
    for (vectors, label), count in shapes.items():
        r = _responsibilities(model, vectors, label)
        for vector, share in zip(vectors, r, strict=True):
            for spec, level in zip(specs, vector, strict=True):
                sums[spec.name][str(level)] = sums[spec.name].get(str(level), 0.0) + count * share
        matched += count * sum(r)
        items += count
    fields = {}
    for spec in specs:
        seen = sums[spec.name]
        total = sum(seen.values())
        fields[spec.name] = FieldParams(u=model.fields[spec.name].u, m={
            str(level): max(FLOOR, (seen.get(str(level), 0.0) + PRIOR_STRENGTH * prior) / (total + PRIOR_STRENGTH))
            for level, prior in spec.m.items()})
    lam = (matched + PRIOR_STRENGTH * LAM_PRIOR) / (items + PRIOR_STRENGTH)
    return Model(fields=fields, lam=min(max(lam, 0.01), 0.999))


def fit(specs: Sequence[FieldSpec], shapes: Counter[Shape], u: Mapping[str, Mapping[str, float]] | None = None, *,
        max_iterations: int = 50, tolerance: float = 1e-5) -> tuple[Model, int]:
    """m and lam by EM from the priors over the items' shapes (labelled ones fixed), u held; the model and the
    iterations it took."""
    model = Model.prior(specs, u)
    for iteration in range(1, max_iterations + 1):
        fitted = _m_step(specs, shapes, model)
        change = max([abs(fitted.lam - model.lam)] + [
            abs(fitted.fields[f].m[level] - model.fields[f].m[level]) for f in fitted.fields
            for level in fitted.fields[f].m])
        model = fitted
        if change < tolerance:
            return model, iteration
    return model, max_iterations


def none_weights(candidate: list[Weight], p_none: float) -> list[Weight]:
    """The weights of a `none` suggestion: the likeliest candidate's, against it, and what the other options
    add (`others`), so they sum to the log2 odds of `none`."""
    against = [w.model_copy(update={"weight": -w.weight}) for w in candidate]
    p = min(max(p_none, 1e-12), 1 - 1e-12)
    rest = math.log2(p / (1 - p)) - sum(w.weight for w in against)
    return against + ([Weight(field="others", weight=round(rest, 3))] if abs(rest) >= 0.05 else [])
