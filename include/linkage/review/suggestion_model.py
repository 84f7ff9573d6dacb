"""The suggestion model: Fellegi-Sunter with exclusivity inside a review item, fitted by EM.

Each compared field (`linkage.core.comparing.FieldSpec`) has, per level, an m probability (among matching
pairs) and a u probability (among pairs that do not match). A candidate's Bayes factor is the product of
m/u over its fields; its weights are their log2 (a Splink waterfall). A review item (or a conflict's group:
the users wanting one profile) holds at most one match among its candidates, possibly none: with `lam`
the probability that it holds one, each candidate's prior is lam/k and `none`'s is 1-lam, and the
posterior is normalised over the item, so two indistinguishable candidates each get about a half.

m, u and lam start from the priors and are re-estimated by EM over the queue's items (`fit`), where a
decided item is a label: its responsibilities are fixed (the chosen candidate matched, the others did not;
`none`: none did). u is the queue's own: how a candidate that is not the match compares *among the
candidates the rules found* (an order of the same customer that day), not among random pairs (Splink's
`estimate_u_using_random_sampling`): random orders are mostly delivered, a same-day second order mostly not,
and only the latter tells a person's candidates apart. Items are counted by their
shape (the candidates' level vectors and the label), so a fit's memory is the number of distinct shapes,
not the queue's size.

EM without labels settles a choice between fields that disagree (a profile named by the phone beside one
named by the email) by whichever way it drifts, then reinforces it into certainty; so a suggested link that
some field speaks against (it does not dominate the other candidates, `contradicted`) is no surer than the
priors alone make it (`capped`) until people decided `LABELS_TO_SETTLE` items of its shape.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel

from linkage.core.comparing import FieldSpec
from linkage.core.evidence import Level, Weight

Vector = tuple[Level, ...]
#: An item's label: the index of the chosen candidate, NONE_LABEL for a person's `none`, RULED_OUT when the
#: rules refuse every candidate (none is the match, but nobody said the document has none), None: undecided.
Label = int | None
Shape = tuple[tuple[Vector, ...], Label]
NONE_LABEL = -1
RULED_OUT = -2
#: How many pairs' worth of belief the priors carry against the data.
PRIOR_STRENGTH = 10.0
#: lam, the chance an item's match is among its candidates, is learnt from people's decisions alone (the
#: queue's own pairs barely tell "none" from "one of them"): this prior, worth this many decisions.
LAM_PRIOR = 0.95
LAM_STRENGTH = 20.0
#: A level no pair has shown still has this much probability (no infinite weights).
FLOOR = 1e-6
#: The weight shown for a link the rules refuse (the candidate is out, whatever its evidence).
REFUSED_BITS = -30.0
#: Items of one shape people must have decided before the queue's own weights settle contradicting evidence.
LABELS_TO_SETTLE = 3


class FieldParams(BaseModel):
    m: dict[str, float]
    u: dict[str, float]


class Model(BaseModel):
    """Fitted parameters: per field, m and u per level; `lam`, the chance an item holds its match."""

    fields: dict[str, FieldParams]
    lam: float = LAM_PRIOR

    @classmethod
    def prior(cls, specs: Sequence[FieldSpec]) -> Model:
        return cls(fields={f.name: FieldParams(m={str(k): v for k, v in f.m.items()},
                                               u={str(k): v for k, v in f.u.items()}) for f in specs})

    def weights(self, vector: Vector, k: int) -> list[Weight]:
        """The prior's weight (a candidate of k against `none`), then each field's: log2 Bayes factors."""
        prior = math.log2(self.lam / k / (1 - self.lam))
        return [Weight(field="prior", weight=round(prior, 3))] + [
            Weight(field=name, level=str(level),
                   weight=round(math.log2(max(p.m.get(level, FLOOR), FLOOR) / max(p.u.get(level, FLOOR), FLOOR)), 3))
            for (name, p), level in zip(self.fields.items(), vector, strict=True)]

    def log_m_u(self, vector: Vector) -> tuple[float, float]:
        """log m and log u of a candidate's levels (natural logs), over its fields."""
        m = u = 0.0
        for p, level in zip(self.fields.values(), vector, strict=True):
            m += math.log(max(p.m.get(level, FLOOR), FLOOR))
            u += math.log(max(p.u.get(level, FLOOR), FLOOR))
        return m, u

    def odds(self, vector: Vector, k: int) -> float:
        """A candidate's posterior odds against `none` (its prior times its Bayes factor)."""
        m, u = self.log_m_u(vector)
        return math.exp(min(700.0, math.log(self.lam / k / (1 - self.lam)) + m - u))

    def posterior(self, vectors: Sequence[Vector], refused: Iterable[int] = ()) -> list[float]:
        """Per candidate the probability it is the match, normalised with `none` (the rest) over the item; a
        refused candidate (a link the rules would not write) is out."""
        out = set(refused)
        odds = [0.0 if i in out else self.odds(v, len(vectors)) for i, v in enumerate(vectors)]
        total = 1 + sum(odds)
        return [o / total for o in odds]


def _responsibilities(model: Model, vectors: tuple[Vector, ...], label: Label) -> list[float]:
    if label is None:
        return model.posterior(vectors)
    return [1.0 if i == label else 0.0 for i in range(len(vectors))]


def _smoothed(seen: Mapping[str, float], prior: Mapping[Level, float]) -> dict[str, float]:
    total = sum(seen.values())
    return {str(level): max(FLOOR, (seen.get(str(level), 0.0) + PRIOR_STRENGTH * p) / (total + PRIOR_STRENGTH))
            for level, p in prior.items()}


def _m_step(specs: Sequence[FieldSpec], shapes: Counter[Shape], model: Model) -> Model:
    """m from the pairs weighted by their responsibility, u by its complement, lam from people's labels."""
    m_seen: dict[str, dict[str, float]] = {f.name: {} for f in specs}
    u_seen: dict[str, dict[str, float]] = {f.name: {} for f in specs}
    matched, items = 0.0, 0
    for (vectors, label), count in shapes.items():
        r = _responsibilities(model, vectors, label)
        for vector, share in zip(vectors, r, strict=True):
            for spec, level in zip(specs, vector, strict=True):
                m_seen[spec.name][level] = m_seen[spec.name].get(level, 0.0) + count * share
                u_seen[spec.name][level] = u_seen[spec.name].get(level, 0.0) + count * (1 - share)
        if label is not None and label != RULED_OUT:
            matched += count * sum(r)
            items += count
    fields = {f.name: FieldParams(m=_smoothed(m_seen[f.name], f.m), u=_smoothed(u_seen[f.name], f.u)) for f in specs}
    lam = (matched + LAM_STRENGTH * LAM_PRIOR) / (items + LAM_STRENGTH)
    return Model(fields=fields, lam=min(max(lam, 0.01), 0.999))


def fit(specs: Sequence[FieldSpec], shapes: Counter[Shape], *, max_iterations: int = 100,
        tolerance: float = 1e-5) -> tuple[Model, int]:
    """m, u and lam by EM from the priors over the items' shapes (labelled ones fixed); the model and the
    iterations it took."""
    model = Model.prior(specs)
    for iteration in range(1, max_iterations + 1):
        fitted = _m_step(specs, shapes, model)
        change = max([abs(fitted.lam - model.lam)] + [
            abs(getattr(fitted.fields[f], side)[level] - getattr(model.fields[f], side)[level])
            for f in fitted.fields for side in ("m", "u") for level in fitted.fields[f].m])
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



def _rank(spec: FieldSpec, level: Level) -> float:
    """How much a level says for a match, as the priors order the levels."""
    return math.log(spec.m.get(level, FLOOR) / spec.u.get(level, FLOOR))


def dominates(specs: Sequence[FieldSpec], a: Vector, b: Vector) -> bool:
    """Whether candidate `a` compares at least as well as `b` on every field (by the priors' order of levels)."""
    return all(_rank(spec, x) >= _rank(spec, y) for spec, x, y in zip(specs, a, b, strict=True))


def contradicted(specs: Sequence[FieldSpec], vectors: Sequence[Vector], chosen: int, out: Iterable[int]) -> bool:
    """Whether some field speaks for another candidate than `chosen` (it does not dominate them all): the queue's
    own weights then decide between fields that disagree, which EM without labels settles by drift, not by
    evidence (a profile named by the phone beside one named by the email)."""
    others = [v for i, v in enumerate(vectors) if i != chosen and i not in set(out)]
    return not all(dominates(specs, vectors[chosen], other) for other in others)


def capped(specs: Sequence[FieldSpec], model: Model, vectors: Sequence[Vector], chosen: int, out: Iterable[int],
           probability: float) -> tuple[float, Weight | None]:
    """A link suggestion whose evidence is contradicted (and whose shape people have not decided enough of):
    no more probable than the priors alone make it, and the weight that says so."""
    if not contradicted(specs, vectors, chosen, out):
        return probability, None
    prior = Model.prior(specs).model_copy(update={"lam": model.lam}).posterior(vectors, out)[chosen]
    if prior >= probability:
        return probability, None
    shift = math.log2(prior / (1 - prior)) - math.log2(probability / max(1 - probability, 1e-12))
    return prior, Weight(field="fields disagree", level="unlabelled", weight=round(shift, 3))
