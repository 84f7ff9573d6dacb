"""Evidence and suggestions on review items: what a person decides by, and what the model would decide.

Stored on each open review item by the `suggest` stage (`linkage.review.suggestion_model`), read by the view, its API,
the CSV export and `linkage decide --accept-suggestions`:

- `evidence`: the item's document's own non-PII facts (`facts`: a delivery's status, day and time; a user's
  role and `created_at`) beside each candidate's comparisons with it (`candidates`: per candidate id, each
  compared field `equal`, `different`, `missing`, or `similar` with a score), and, for a conflict, the items
  of the other documents that want the same candidate (`rivals`). A phone or an email is never a fact: that
  they compare equal is all that is said of them.
- `suggestion`: a candidate's id or `none`, the match probability, and the weights that moved it (a
  Fellegi-Sunter match weight per compared field, in bits, after the prior's): what a Splink waterfall draws.
  A suggestion never writes anything: a person accepts it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

#: What a suggestion names when it says "leave it unlinked".
NONE = "none"


class Level(StrEnum):
    """How one field of a candidate compares with the item's document."""

    EQUAL = "equal"
    SIMILAR = "similar"
    DIFFERENT = "different"
    MISSING = "missing"


class Comparison(BaseModel):
    """One field compared: its level, and for `similar` the similarity (0 to 1)."""

    model_config = ConfigDict(frozen=True)

    field: str
    level: Level
    score: float | None = None

    @property
    def shown(self) -> str:
        return f"{self.field} {self.level}" + (f" {self.score:.2f}" if self.score is not None else "")


class Evidence(BaseModel):
    """The item's document beside its candidates (see the module docstring).

    `candidates` is a mapping here, by candidate id, but stored as a list of `{id, compared}`: an id is the app's
    data, written by strangers, and never a field name (`$x` is refused by MongoDB, `a.b` by FerretDB).
    """

    facts: dict[str, str] = Field(default_factory=dict)
    candidates: dict[str, list[Comparison]] = Field(default_factory=dict)
    #: A conflict: the review items of the other documents that want the same candidate.
    rivals: list[str] = Field(default_factory=list)

    @field_validator("candidates", mode="before")
    @classmethod
    def _from_stored(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(entry["id"]): entry.get("compared") or [] for entry in value}
        return value

    @field_serializer("candidates")
    def _stored(self, candidates: dict[str, list[Comparison]]) -> list[dict[str, Any]]:
        return [{"id": cid, "compared": [c.model_dump() for c in compared]} for cid, compared in candidates.items()]


class Weight(BaseModel):
    """What one piece of evidence did to the match weight, in bits (log2 of its Bayes factor); `prior` first."""

    model_config = ConfigDict(frozen=True)

    field: str
    level: str = ""
    weight: float


class Suggestion(BaseModel):
    """The decision the model would make (a candidate's id, or `none`), how probable it is, and why."""

    target: str
    probability: float = Field(ge=0, le=1)
    weights: list[Weight] = Field(default_factory=list)
    #: The fit it came from (`linkage_model`), and when.
    model: str
    at: datetime | None = None

    @property
    def evidence_text(self) -> str:
        """The weights as short text (the export's `evidence` column): `status equal +3.4; prior -1.0`."""
        return "; ".join(f"{w.field}{' ' + w.level if w.level else ''} {w.weight:+.1f}" for w in self.weights)
