"""Where a pass's batches go: a real run journals and writes them, a dry run journals its counts only.

A dry run is the same plan run with the writer that writes nothing: the pass,
its planning and its journal of counts are the same code. The live writer is
the write path of CONTRACT §5: review items first (idempotent, and a batch the
journal calls applied must have them), then the journal (the before-images),
then the conditional writes, then the batch settled with exactly the writes
that landed. Its app database and journal are guarded (`linkage.guard`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from pymongo.database import Database

from linkage.journal import BatchRecord, FieldWrite, Journal, apply_batch
from linkage.models import Category, Decision
from linkage.reviews import ReviewQueue

if TYPE_CHECKING:
    from linkage.engine import Pass

DRY, PENDING = "dry", "pending"
LANDED_ELSEWHERE = "link field changed by someone else meanwhile"


class BatchWriter(ABC):
    """Journals a planned batch, and writes it or not."""

    def __init__(self, run_id: str, journal: Journal) -> None:
        self.run_id, self.journal = run_id, journal

    @abstractmethod
    def write(self, job: Pass, record: BatchRecord, decisions: list[Decision]) -> list[FieldWrite]:
        """Journal and carry out one batch; the writes that could not land (their counts are moved)."""

    @abstractmethod
    def finish(self, job: Pass, record: BatchRecord) -> None:
        """Carry out a batch an earlier try journaled as pending (a resumed pass)."""


class DryWriter(BatchWriter):
    """The journal of counts, nothing else: not the app's collections, not the review queue."""

    def write(self, job: Pass, record: BatchRecord, decisions: list[Decision]) -> list[FieldWrite]:
        record.writes, record.state = [], DRY
        self.journal.begin(record)
        return []

    def finish(self, job: Pass, record: BatchRecord) -> None:
        """A dry batch has nothing to carry out."""


def _downgraded(decisions: list[Decision], dropped: list[FieldWrite], to: Category) -> list[Decision]:
    """The linked decisions whose writes could not land, recategorised."""
    groups = {w.group for w in dropped}
    return [d.model_copy(update={"category": to, "reason": LANDED_ELSEWHERE})
            for d in decisions if str(d.oid) in groups and d.category == Category.LINKED]


class LiveWriter(BatchWriter):
    def __init__(self, run_id: str, journal: Journal, app: Database, reviews: ReviewQueue) -> None:
        super().__init__(run_id, journal)
        self.app, self.reviews = app, reviews

    def _review(self, job: Pass, decisions: list[Decision]) -> None:
        self.reviews.record(self.run_id, job.step, job.subject, decisions, found_by=job.phase)

    def _settle(self, record: BatchRecord, unlanded: Category) -> list[FieldWrite]:
        """Apply a journaled batch and mark it applied; returns the writes that could not land."""
        dropped = apply_batch(self.app, record)
        if dropped:
            lost = len({w.group for w in dropped})
            for counts in (record.counts, record.totals):
                counts[Category.LINKED.value] = counts.get(Category.LINKED.value, 0) - lost
                counts[unlanded.value] = counts.get(unlanded.value, 0) + lost
        self.journal.settle(record, rewrite=bool(dropped))
        return dropped

    def write(self, job: Pass, record: BatchRecord, decisions: list[Decision]) -> list[FieldWrite]:
        self._review(job, decisions)
        self.journal.begin(record)
        dropped = self._settle(record, job.unlanded)
        if dropped:
            self._review(job, _downgraded(decisions, dropped, job.unlanded))
        return dropped

    def finish(self, job: Pass, record: BatchRecord) -> None:
        self._settle(record, job.unlanded)
