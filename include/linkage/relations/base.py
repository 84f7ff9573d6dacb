"""What a step (one relation to link) declares, in the spirit of a migration object.

A step says everything about its relation in one place: the phases that link
it (each one pass of the engine: batched, journaled, resumable, partitionable),
the collections it writes and the indexes it needs, its rules and the checks
that measure them, the relations whose coverage it is judged on (with their
threshold parameters), and its label. Rolling a phase back is the journal's
job, the same for every step. Everything else (the run's plan, the CLI, the
Params form, validation, `linkage status`) iterates the registry
(`linkage.relations.REGISTRY`), which checks each step when it is registered.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pymongo.collection import Collection
from pymongo.database import Database

from linkage.core.comparing import Comparator
from linkage.core.models import RunKind
from linkage.engine.coverage import Relation
from linkage.engine.passes import Pass
from linkage.mongo.indexes import IndexSpec, Keys
from linkage.relations.checks import Check
from linkage.relations.decided import DECIDED, decided_pass
from linkage.relations.rules import Rule, Threshold
from linkage.store.decisions import StateReader


@dataclass(frozen=True)
class StepContext:
    """What building a pass needs: the run and the collections it works on."""

    db: Database
    run_id: str
    kind: RunKind
    tz: ZoneInfo
    bookkeeping: Callable[[str], Collection]  # a `linkage_*` collection by its short name
    write_chunk: int  # statements per write command, at most (`linkage.mongo.bulk`)
    #: When the run started (a decisions pass carries out the decisions made before), and how a decided
    #: document's state is read.
    started: datetime
    states: StateReader
    #: A dry run writes nothing: a decisions run's then plans the decisions awaiting approval too.
    dry_run: bool = False


#: (a document, the id a person decided to link it to) -> per pair, the CONTRACT rule the link would break.
LinkCheck = Callable[[Database, Sequence[tuple[Mapping[str, Any], str]]], list[str | None]]


@dataclass(frozen=True)
class Subject:
    """A collection a step's review items are about, and what a person's decision on one of its documents
    touches: the `link` field it sets or clears, the `target` collection a link names a document of (and its
    `back` field naming the document in return, where the relation has two sides), the
    `keys` the rules matched it on (a "leave it unlinked" decision holds while they stay as they were), and
    the relation's rules a decided link must keep (`check`: uniqueness, both sides agreeing, ...). The
    item's candidates themselves come from the step's phases, which decide by the same rules."""

    collection: str
    link: str
    target: str
    keys: tuple[str, ...]
    check: LinkCheck
    back: str | None = None


@dataclass(frozen=True)
class Phase:
    """One pass of a step, by name, and how to build it for a run."""

    name: str
    build: Callable[[StepContext], Pass]


class StepSpec(ABC):
    """One relation: how it is linked, what it touches, and how it is judged."""

    #: The step's name: what its counts are reported under, `--steps` and the Params form take.
    id: ClassVar[str]
    #: How people know it (the Params form's multi-select).
    label: ClassVar[str]
    #: The app collections the step reads (those it writes among them): a database without them is not the
    #: app's, and every command refuses it before it writes anything (`Linkage.require_app`).
    reads: ClassVar[tuple[str, ...]]
    #: The app collections the step writes (what its runs back up).
    writes: ClassVar[tuple[str, ...]]
    #: The indexes its passes and checks read through (created before any backfill).
    indexes: ClassVar[tuple[IndexSpec, ...]] = ()
    #: Bookkeeping collections holding a run's working data (tagged `run_id`, removed when the run ends),
    #: with the indexes each needs.
    scratch: ClassVar[dict[str, list[Keys]]] = {}
    #: What validation judges the step's runs by, and the walks that measure it.
    rules: ClassVar[tuple[Rule, ...]] = ()
    checks: ClassVar[tuple[Check, ...]] = ()
    #: The relations whose coverage `linkage status` and validation report.
    relations: ClassVar[tuple[Relation, ...]] = ()
    #: The collections its review items are about, and what a person's decision on them may write.
    subjects: ClassVar[tuple[Subject, ...]] = ()
    #: How its review items' documents compare with their candidates (the evidence; `linkage.core.comparing`).
    comparators: ClassVar[tuple[Comparator, ...]] = ()

    @abstractmethod
    def phases(self, kind: RunKind) -> list[Phase]:
        """The step's own phases, in the order they run, for a migration or a reconcile."""

    def run_phases(self, kind: RunKind) -> list[Phase]:
        """The phases a run of this kind runs: people's decisions first (a reconcile, a decisions run: alone),
        for a step that takes them (`linkage.relations.decided`), then the step's own."""
        decided = [Phase(DECIDED, partial(decided_pass, self.id, self.subjects))] \
            if self.subjects and kind != RunKind.MIGRATE else []
        return decided + ([] if kind == RunKind.DECISIONS else self.phases(kind))

    def phase_names(self, kind: RunKind) -> list[str]:
        return [phase.name for phase in self.run_phases(kind)]

    def phase(self, name: str, kind: RunKind) -> Phase:
        for phase in self.run_phases(kind):
            if phase.name == name:
                return phase
        raise KeyError(f"{self.id} has no phase {name!r} in a {kind} run")

    @property
    def thresholds(self) -> list[Threshold]:
        return [rule.threshold for rule in self.rules if rule.threshold is not None]

    def ensure_scratch_indexes(self, bookkeeping: Callable[[str], Collection]) -> None:
        """Indexes on the step's scratch collections (once per run, not per pass)."""
        for name, indexes in self.scratch.items():
            for keys in indexes:
                bookkeeping(name).create_index(keys)
