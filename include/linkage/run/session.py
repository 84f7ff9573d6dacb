"""The engine handle: the app database, linkage's bookkeeping collections and the run's write path.

One `Linkage` per process and database (a CLI command, an Airflow task, the
view). It knows where writes may go: the app's collections and the journal are
reached through `app` and `writer()`, guarded by whatever lease and claims the
caller holds (`hold`, `joined`, `guarded_by`), so no stage carries a guard in
its signature, and a write made without a lease fails instead of slipping past.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database

from linkage.core.clock import Clock, as_utc, utc_now
from linkage.core.errors import LockLostError
from linkage.core.settings import Settings
from linkage.engine.passes import RunContext
from linkage.engine.writer import BatchWriter, DryWriter, PlanningWriter
from linkage.mongo.concerns import read_concern_for
from linkage.mongo.connect import connect, require_collections
from linkage.mongo.guard import Guard, guarded_collection, guarded_database
from linkage.relations import REGISTRY, StepContext
from linkage.run.alerts import AlertStore, LogChannel
from linkage.run.events import Events, Subscriber
from linkage.run.record import RunRecord, RunStore
from linkage.store.bookkeeping import Bookkeeping
from linkage.store.decisions import DecisionStore, StateReader
from linkage.store.journal import Journal
from linkage.store.lease import Lease
from linkage.store.review_queue import ReviewQueue


@dataclass(frozen=True)
class WritePath:
    """What a run writes, each write asking the guard first: the app's collections, the journal, the queue."""

    app: Database
    journal: Journal
    reviews: ReviewQueue


class Linkage:
    """The app database and linkage's bookkeeping collections for one setting.

    `subscribers` hear the runs' events; by default the log channel (the CLI's).
    `clock` is what time it is for everything that ages (`linkage.core.clock`).
    """

    def __init__(self, settings: Settings, client: MongoClient | None = None, *,
                 subscribers: Sequence[Subscriber] | None = None, clock: Clock = utc_now) -> None:
        self.settings, self.clock = settings, clock
        self.client = client or connect(settings)
        self.db = self.client[settings.db]
        #: Majority reads where the server offers them (`linkage.mongo.concerns`): what every bookkeeping read uses.
        self.read_concern = read_concern_for(self.client)
        #: A `linkage_*` collection of this database by its short name, durable and retried (`store.bookkeeping`).
        self.bookkeeping = Bookkeeping(self.db, settings.collection, self.read_concern, settings.retry_seconds)
        self.runs = RunStore(self.bookkeeping("runs"), clock)
        self.journal = Journal(self.bookkeeping("journal"))
        #: Reads the state of the documents review items are about (what a decision holds on).
        self.states = StateReader(self.db, REGISTRY.state_fields())
        self.reviews = ReviewQueue(self.bookkeeping("review"), self.states, clock, settings.write_chunk)
        self.decisions = DecisionStore(self.bookkeeping("decisions"))
        self.alerts = AlertStore(self.bookkeeping("alerts"), clock)
        self.lock = self.bookkeeping("lock")
        self.events = Events(subscribers if subscribers is not None else [LogChannel(self.alerts, settings.docs_dir)])
        self._guards: list[Guard] = []
        self._leases: list[Lease] = []

    def require_app(self, steps: Sequence[str] | None = None) -> None:
        """Refuse, before anything is written (bookkeeping included), a database that lacks the collections
        these steps (every step by default) read: a typo in its name must not be a green run on nothing."""
        require_collections(self.client, self.settings.db, REGISTRY.reads(steps))

    def ensure_bookkeeping(self) -> None:
        self.runs.ensure_indexes()
        self.journal.ensure_indexes()
        self.reviews.ensure_indexes()
        for spec in REGISTRY.values():
            spec.ensure_scratch_indexes(self.bookkeeping)

    def close(self) -> None:
        self.client.close()

    def record(self, run_id: str) -> RunRecord:
        return self.runs.record(run_id)

    # the write path ------------------------------------------------------------------------------------------
    def guard(self) -> None:
        """Run every guard the caller holds; writes without a lease are refused."""
        if not self._guards:
            raise LockLostError("no lease is held: a run writes the app's data only under its lease")
        for check in self._guards:
            check()

    @contextmanager
    def guarded_by(self, check: Guard) -> Iterator[None]:
        """Writes in this block also need `check` to pass (a partition still claimed by this try)."""
        self._guards.append(check)
        try:
            yield
        finally:
            self._guards.remove(check)

    @property
    def app(self) -> Database:
        """The app database for writing: every write asks the guard first."""
        return guarded_database(self.db, self.guard, self.settings.retry_seconds)

    def guarded(self, coll: Collection) -> Collection:
        """`coll` for a run's writes: each asks the guard first, and is retried through a failover."""
        return guarded_collection(coll, self.guard, self.settings.retry_seconds)

    def write_path(self) -> WritePath:
        return WritePath(self.app, Journal(self.guarded(self.journal.coll)),
                         ReviewQueue(self.guarded(self.reviews.coll), self.states, self.clock,
                                     self.settings.write_chunk))

    def writer(self, run: RunRecord) -> BatchWriter:
        """Where the run's planned batches go: their counts only in a dry run; otherwise their review items and
        the batch with its writes, each write guarded."""
        if run.dry_run:
            return DryWriter(run.id, self.journal)
        path = self.write_path()
        return PlanningWriter(run.id, path.journal, path.reviews)

    def fence(self, batch: str) -> None:
        """Before a batch's writes: every lease held is still ours, with room for the batch (`Lease.fence`)."""
        if not self._leases:
            raise LockLostError("no lease is held: a run writes the app's data only under its lease")
        for lease in self._leases:
            lease.fence(batch)

    @contextmanager
    def _holding(self, lease: Lease) -> Iterator[Lease]:
        self._leases.append(lease)
        try:
            with self.guarded_by(lease.guard):
                yield lease
        finally:
            self._leases.remove(lease)

    @contextmanager
    def hold(self, run_id: str) -> Iterator[Lease]:
        """Take the lease for `run_id` (heartbeating) and release it at the end (the CLI)."""
        owner = self.record(run_id).triggered_by
        lease = Lease.acquire(self.lock, run_id, owner, self.settings.lock_ttl_seconds).start_heartbeat()
        try:
            with self._holding(lease):
                yield lease
        finally:
            lease.release()

    @contextmanager
    def joined(self, run_id: str) -> Iterator[Lease]:
        """Work under the lease the run already holds (an Airflow task), heartbeating it."""
        lease = Lease.join(self.lock, run_id, self.settings.lock_ttl_seconds).start_heartbeat()
        try:
            with self._holding(lease):
                yield lease
        finally:
            lease.stop_heartbeat()

    # what passes are built from ------------------------------------------------------------------------------
    def step_context(self, run: RunRecord) -> StepContext:
        started = as_utc(run.created_at)
        assert started is not None, f"run {run.id} has no start time"
        return StepContext(db=self.db, run_id=run.id, kind=run.kind, tz=self.settings.tz,
                           bookkeeping=self.bookkeeping, write_chunk=self.settings.write_chunk,
                           started=started, states=self.states, dry_run=run.dry_run)

    def run_context(self, run: RunRecord, *, show_progress: bool = False) -> RunContext:
        return RunContext(run_id=run.id, journal=self.journal, writer=self.writer(run),
                          batch_size=run.params.batch_size, show_progress=show_progress,
                          progress_interval=self.settings.progress_interval, in_flight=self.settings.in_flight)
