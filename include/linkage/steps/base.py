"""What a step (one relation to link) declares, in the spirit of a migration object.

A step is a plan of phases. Each phase is one pass of the engine (batched,
journaled, resumable, partitionable) that the step knows how to build for a
run; rolling a phase back is the journal's job, the same for every step. The
pipeline, the CLI and the DAG factory only iterate the registry
(`linkage.steps.REGISTRY`): adding a relation is adding a module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar
from zoneinfo import ZoneInfo

from pymongo.collection import Collection
from pymongo.database import Database

from linkage.engine import Pass
from linkage.models import RunKind, Step


@dataclass(frozen=True)
class StepContext:
    """What building a pass needs: the run and the collections it works on."""

    db: Database
    run_id: str
    kind: RunKind
    tz: ZoneInfo
    bookkeeping: Callable[[str], Collection]  # a `linkage_*` collection by its short name


@dataclass(frozen=True)
class Phase:
    """One pass of a step, by name, and how to build it for a run."""

    name: str
    build: Callable[[StepContext], Pass]


class StepSpec(ABC):
    """One relation: the phases that link it and the collections it touches."""

    step: ClassVar[Step]
    #: The app collections the step writes (what its runs back up).
    writes: ClassVar[tuple[str, ...]]
    #: Bookkeeping collections holding a run's working data (tagged `run_id`, removed when the run ends),
    #: with the indexes each needs.
    scratch: ClassVar[dict[str, list[list[tuple[str, int]]]]] = {}

    @abstractmethod
    def phases(self, kind: RunKind) -> list[Phase]:
        """The phases, in the order they run, for a run of this kind."""

    def ensure_indexes(self, bookkeeping: Callable[[str], Collection]) -> None:
        """Indexes on the step's scratch collections (once per run, not per pass)."""
        for name, indexes in self.scratch.items():
            for keys in indexes:
                bookkeeping(name).create_index(keys)

    def phase(self, name: str, kind: RunKind) -> Phase:
        for phase in self.phases(kind):
            if phase.name == name:
                return phase
        raise KeyError(f"{self.step} has no phase {name!r} in a {kind} run")
