"""The expectations of CONTRACT §6 as objects: what each checks and how it is judged.

A relation declares its own rules (`StepSpec.rules`, in its step module); the
one rule that belongs to no relation, `documents_lost`, is here. A finding
carries its `Rule` object, never a name typed again, so a rule cannot be
misspelt into silence: the registry refuses a check whose rules its step does
not declare, a finding for a rule its check does not measure is an error, and a
rule that no check measured fails the run (`metrics.measure`).

`integrity` rules fail a run for a violation in a document the run wrote (and
report the others as drift); `coverage` rules compare a relation's ratio with
the run's threshold; `lost` (documents the run backed up that no longer exist)
can only be drift, since linkage never deletes a document.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator

from linkage.engine.coverage import Relation

RUN_SUITE, DRIFT_SUITE = "linkage_run", "linkage_drift"


class RuleKind(StrEnum):
    INTEGRITY = "integrity"
    COVERAGE = "coverage"
    LOST = "lost"


class Threshold(BaseModel):
    """A run parameter a coverage rule is judged against: a CLI flag and a Params field of its own."""

    model_config = ConfigDict(frozen=True)

    parameter: str  # `min_order_coverage`: the flag `--min-order-coverage`, the Param `min_order_coverage`
    title: str
    description: str
    default: float = 0.8


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    kind: RuleKind
    step: str | None = None
    #: A coverage rule's relation and threshold.
    relation: Relation | None = None
    threshold: Threshold | None = None

    @model_validator(mode="after")
    def _coverage_has_a_relation_and_a_threshold(self) -> Rule:
        if (self.kind == RuleKind.COVERAGE) != (self.relation is not None and self.threshold is not None):
            raise ValueError(f"rule {self.name}: a coverage rule, and only one, names a relation and a threshold")
        return self

    def __hash__(self) -> int:
        return hash(self.name)

    def threshold_text(self, thresholds: Mapping[str, float]) -> str:
        """What the rule expects, in the run's terms: `>= 0.8`, or `<= 0`."""
        if self.threshold is not None:
            return f">= {thresholds[self.threshold.parameter]}"
        return "<= 0"

    @property
    def judges_the_run(self) -> bool:
        return self.kind != RuleKind.LOST


DOCUMENTS_LOST = Rule(name="documents_lost", kind=RuleKind.LOST,
                      description="every document in the run's backup still exists")
