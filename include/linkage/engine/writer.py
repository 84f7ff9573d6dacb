"""Where a pass's batches go: a real run journals them as planned, a dry run journals its counts only.

A pass never writes the app's data: it plans. A real run's batches are
journaled `planned`, with their writes and before-images, after their review
items (idempotent, and a batch the journal has must have them); once every pass
has planned, the run backs up what it is about to write and its apply stage
carries out the planned batches (`linkage.stages.apply`). A dry run is the same plan
with the writer that keeps nothing but counts: not the writes, not the review
queue. The planning writer's journal and review queue are guarded
(`linkage.mongo.guard`): planning too happens under the run's lease.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from linkage.core.models import Ruling
from linkage.store.journal import BatchRecord, BatchState, Journal
from linkage.store.review_queue import ReviewQueue

if TYPE_CHECKING:
    from linkage.engine.passes import Pass


class BatchWriter(ABC):
    """Journals one planned batch, with its writes or without them."""

    def __init__(self, run_id: str, journal: Journal) -> None:
        self.run_id, self.journal = run_id, journal

    @abstractmethod
    def write(self, job: Pass, record: BatchRecord, decisions: list[Ruling]) -> None:
        """Keep one planned batch (and its decisions, where they are kept)."""


class DryWriter(BatchWriter):
    """The journal of counts, nothing else: not the writes, not the review queue."""

    def write(self, job: Pass, record: BatchRecord, decisions: list[Ruling]) -> None:
        record.writes, record.state = [], BatchState.DRY
        self.journal.begin(record)


class PlanningWriter(BatchWriter):
    """Review items first, then the batch journaled `planned` with every write it will make (`applied` when it
    makes none: there is nothing for the apply stage to carry out, or to mark twice)."""

    def __init__(self, run_id: str, journal: Journal, reviews: ReviewQueue) -> None:
        super().__init__(run_id, journal)
        self.reviews = reviews

    def write(self, job: Pass, record: BatchRecord, decisions: list[Ruling]) -> None:
        self.reviews.record(self.run_id, job.step, job.subject, decisions, found_by=job.phase)
        record.state = BatchState.PLANNED if record.writes else BatchState.APPLIED
        self.journal.begin(record)
