"""The typed parts of a run's record (`RunRecord`): what each stage leaves there.

Each is read and written as a model, never as a dict: a field misspelt in
code is an error, not a `None`. They are stored as the models dump them (JSON
types), so any tool can read the record.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field

from linkage.models import empty_counts
from linkage.partitions import Partition


class BackupRecord(BaseModel):
    """Where the run's backup is and what it holds (documents per collection)."""

    path: str
    verified: bool = False
    gzip: bool = True
    counts: dict[str, int] = Field(default_factory=dict)


class RollbackOutcome(BaseModel):
    """What undoing a run did: restored now, already restored earlier, kept (the app changed them)."""

    restored: int = 0
    already: int = 0
    kept: int = 0
    error: str | None = None
    #: The run had been rolled back before: nothing was touched or counted again.
    already_rolled_back: bool = False


class DriftRecord(BaseModel):
    """Violations the run found but did not cause, per expectation."""

    total: int = 0
    by_expectation: dict[str, int] = Field(default_factory=dict)


#: The most drift findings a dry run keeps in its record (it writes no review items to list them in).
FINDINGS_CAP = 2000


class FoundItem(BaseModel):
    """One document a run's validation found in drift: ids and why, never a value."""

    rule: str
    step: str | None = None
    collection: str
    document_oid: str
    document_id: str | None = None
    category: str
    reason: str


class FindingsRecord(BaseModel):
    """What a dry run's validation found, document by document (the first `FINDINGS_CAP`, and how many more):
    a real run's are review items, a dry run leaves none. Kept beside the record's other fields, not in
    `drift`, so that reading the run history never reads them."""

    items: list[FoundItem] = Field(default_factory=list)
    more: int = 0


def _partition_key(index: int) -> str:
    """A partition's key in a stored mapping: never a bare number, which MongoDB reads as an array index."""
    return f"p{index}"


class PhaseRecord(BaseModel):
    """One phase of a step in a run: its cut into partitions (made once) and each partition's totals."""

    partitions: list[Partition] | None = None
    totals: dict[str, dict[str, int]] = Field(default_factory=dict)

    @staticmethod
    def totals_path(step: str, phase: str, index: int) -> str:
        return f"steps.{step}.phases.{phase}.totals.{_partition_key(index)}"

    @staticmethod
    def partitions_path(step: str, phase: str) -> str:
        return f"steps.{step}.phases.{phase}.partitions"

    def partition(self, index: int) -> Partition | None:
        return next((p for p in self.partitions or [] if p.index == index), None)


class StepRecord(BaseModel):
    """One step of a run: its phases, its counts by category (their sum) and how long it took."""

    phases: dict[str, PhaseRecord] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    seconds: float | None = None

    def summed(self) -> dict[str, int]:
        """Every category's count over every phase and partition (categories only: not a phase's extras)."""
        counts = empty_counts()
        for totals in _all_totals(self.phases.values()):
            for category, n in totals.items():
                if category in counts:
                    counts[category] += n
        return counts


def _all_totals(phases: Iterable[PhaseRecord]) -> Iterable[dict[str, int]]:
    return (totals for phase in phases for totals in phase.totals.values())
