"""The typed parts of a run's record (`RunRecord`): what each stage leaves there.

Each is read and written as a model, never as a dict: a field misspelt in
code is an error, not a `None`. They are stored as the models dump them (JSON
types), so any tool can read the record.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_serializer, field_validator

from linkage.engine.partitions import Partition
from linkage.store.backup import Scope


class BackupRecord(BaseModel):
    """Where the run's backup is, whether it is whole or the run's own documents, what it holds (documents per
    collection) and its size."""

    path: str
    verified: bool = False
    gzip: bool = True
    scope: Scope = Scope.FULL
    bytes: int | None = None
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
    """Violations the run found but did not cause, per expectation; and, of those, the documents that were not in
    violation before this run (`new`, with a few of them as examples)."""

    total: int = 0
    by_expectation: dict[str, int] = Field(default_factory=dict)
    new: dict[str, int] = Field(default_factory=dict)
    new_examples: dict[str, list[str]] = Field(default_factory=dict)

    def add_new(self, rule: str, example: str, keep: int = 5) -> None:
        self.new[rule] = self.new.get(rule, 0) + 1
        examples = self.new_examples.setdefault(rule, [])
        if len(examples) < keep:
            examples.append(example)


class DecisionsPreview(BaseModel):
    """What a run is about to do with people's decisions, as its approver is shown it: by kind, the stale ones
    (their document changed since), who decided (the most frequent deciders first, at most 20), how many a
    second person approved already, and, when the approver is known (the CLI), how many of theirs they
    cannot approve (`own`: left pending for someone else, not counted in the rest)."""

    total: int = 0
    links: int = 0
    none: int = 0
    clears: int = 0
    stale: int = 0
    #: By decider, how many (stored as a list of `{by, count}`: a name such as `cli:ana@db1.example.com` is
    #: never a field name, which FerretDB refuses with a `.`).
    deciders: dict[str, int] = Field(default_factory=dict)
    approved: int = 0
    approver: str | None = None
    own: int = 0

    @field_validator("deciders", mode="before")
    @classmethod
    def _from_stored(cls, value: Any) -> Any:
        return {str(e["by"]): int(e["count"]) for e in value} if isinstance(value, list) else value

    @field_serializer("deciders")
    def _stored(self, deciders: dict[str, int]) -> list[dict[str, Any]]:
        return [{"by": by, "count": n} for by, n in deciders.items()]


class Approval(BaseModel):
    """Who let a decisions run write, or refused it: `by` is None when nobody answered in time (the timeout
    rejects)."""

    approved: bool
    by: str | None = None
    via: str
    at: Any = None
    #: How many decisions it approved (or rejected), and how many were the approver's own: those stay pending
    #: for another person (nobody approves what they decided themselves).
    decisions: int = 0
    own: int = 0


class People(BaseModel):
    """Who decided and who approved the decisions a run wrote (applied), and how many."""

    by: str
    approved_by: str | None = None
    count: int = 0


class DecisionsRecord(BaseModel):
    """A run's part in people's decisions: what it was about to do, its approval, each outcome's count
    (`applied`, `stale`, `rejected`, `rolled_back`), and the decider and approver of what it wrote."""

    preview: DecisionsPreview | None = None
    approval: Approval | None = None
    outcome: dict[str, int] = Field(default_factory=dict)
    people: list[People] = Field(default_factory=list)

    def summary(self) -> str | None:
        """`decisions 3 applied, 2 left pending: admin's own, another person must approve them`."""
        words = [f"{n:,} {status}" for status, n in self.outcome.items()]
        if self.approval and self.approval.own:
            words.append(f"{self.approval.own:,} left pending: {self.approval.by}'s own, another person must "
                         "approve them")
        return "decisions " + ", ".join(words) if words else None


class Paging(BaseModel):
    """Whether a kept run's drift paged tonight, and why: a record a person can read (`linkage status`)."""

    page: bool
    remind: bool = False
    why: str
    open: int
    rose: dict[str, int] = Field(default_factory=dict)
    new: dict[str, int] = Field(default_factory=dict)
    #: The run that last paged, and when (epoch seconds): what "new since" means.
    since_run: str | None = None
    since: float | None = None


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
    """One phase of a step in a run: its cut into partitions, made once (a retried partition works the same
    range)."""

    partitions: list[Partition] | None = None

    @staticmethod
    def partitions_path(step: str, phase: str) -> str:
        return f"steps.{step}.phases.{phase}.partitions"

    def partition(self, index: int) -> Partition | None:
        return next((p for p in self.partitions or [] if p.index == index), None)


class StepRecord(BaseModel):
    """One step of a run: its phases, its counts by category (summed from the journal) and how long it took."""

    phases: dict[str, PhaseRecord] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    seconds: float | None = None
