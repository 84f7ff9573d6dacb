"""A run's plan: its stages in order, as data. The one place a run's sequence is written.

As Django's `migration_plan()` returns data that `migrate(plan)` then runs, a
`Plan` says what a run of a kind does: be approved by a person (a decisions
run), take the lease, back up (a migration: whole, before anything else reads
the app), make the indexes, link each relation in turn (its backfill plans its
writes into the journal, backs up what it will write when the run did not back
up whole, then writes them, partition by partition), judge the run, conclude,
suggest decisions on the review items it left (`suggest`), clean up after
itself (`housekeeping`); two executors carry it out: the CLI's
runner in this process (`linkage.stages.executor`) and the DAG factory, which maps each
stage onto Airflow tasks (`linkage.airflow.dag_factory`). A dry run is the same
plan: its stages that write the app's data are skipped (in Airflow, visibly)
and its passes get the writer that writes nothing. The plan is checked when it
is made, as alembic checks its revision map when it loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator

from linkage.core.models import RunKind
from linkage.relations import REGISTRY


class StageName(StrEnum):
    PREFLIGHT = "preflight"
    APPROVE = "approve"
    ACQUIRE_LOCK = "acquire_lock"
    BACKUP = "backup"
    CREATE_INDEXES = "create_indexes"
    BACKFILL = "backfill"
    VALIDATE = "validate"
    CONCLUDE = "conclude"
    SUGGEST = "suggest"
    REPORT = "report"
    HOUSEKEEPING = "housekeeping"
    RELEASE_LOCK = "release_lock"


class Role(StrEnum):
    """Airflow's setup and teardown: the lease is taken by the one and released by the other, always."""

    SETUP = "setup"
    WORK = "work"
    TEARDOWN = "teardown"


class Stage(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: StageName
    role: Role = Role.WORK
    #: Changes what a dry run must not (the app's collections, other runs' bookkeeping): skipped by one.
    skipped_by_dry_run: bool = False
    #: A backfill's step and its phases, in the order they run.
    step: str | None = None
    phases: tuple[str, ...] = ()
    #: A backfill that backs up what it planned before it writes it (a run that took no whole backup first).
    backs_up: bool = False

    @property
    def writes(self) -> bool:
        """Writes the app's documents: a backfill (its partitions write what they planned)."""
        return self.name == StageName.BACKFILL

    @property
    def id(self) -> str:
        """`backfill_<step>` for a backfill, else the stage's name (the Airflow task or group id)."""
        return f"{self.name}_{self.step}" if self.step else str(self.name)


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: RunKind
    stages: tuple[Stage, ...]

    @model_validator(mode="after")
    def _well_formed(self) -> Plan:
        ids = [stage.id for stage in self.stages]
        if len(ids) != len(set(ids)):
            raise ValueError(f"a plan names a stage twice: {ids}")
        setup = [i for i, stage in enumerate(self.stages) if stage.role == Role.SETUP]
        writes = [i for i, stage in enumerate(self.stages) if stage.skipped_by_dry_run or stage.writes]
        if len(setup) != 1 or (writes and min(writes) < setup[0]):
            raise ValueError("a plan takes its lease once, before anything that writes")
        if self.stages[-1].role != Role.TEARDOWN:
            raise ValueError("a plan ends by releasing its lease")
        names = [stage.name for stage in self.stages]
        if (StageName.APPROVE in names) != (self.kind == RunKind.DECISIONS) or (
                StageName.APPROVE in names and names.index(StageName.APPROVE) > setup[0]):
            raise ValueError("a decisions run, and only one, is approved, before it takes its lease (an approval "
                             "may wait for hours: the nightly run must not wait behind it)")
        backed_up = names.index(StageName.BACKUP) if StageName.BACKUP in names else len(names)
        for i, stage in enumerate(self.stages):
            if stage.writes and not stage.backs_up and i < backed_up:
                raise ValueError(f"stage {stage.id} writes before a backup of what it writes")
            if stage.writes != bool(stage.step and stage.phases) or (stage.backs_up and not stage.writes):
                raise ValueError(f"stage {stage.id}: a backfill, and only a backfill, names a step and its phases, "
                                 "and backs up on its own")
            if stage.backs_up and backed_up < len(names):
                raise ValueError(f"stage {stage.id} backs up again what the run backed up whole")
        return self

    @property
    def backfills(self) -> list[Stage]:
        return [stage for stage in self.stages if stage.name == StageName.BACKFILL]


def run_plan(kind: RunKind, steps: Sequence[str] | None = None) -> Plan:
    """The plan of a run of `kind` over `steps` (every registered step by default, as a DAG is built): a
    decisions run over the steps that take decisions, approved by a person first."""
    chosen = list(REGISTRY) if steps is None else list(steps)
    if kind == RunKind.DECISIONS:
        chosen = [step for step in chosen if REGISTRY[step].subjects]
    whole = kind == RunKind.MIGRATE  # a migration backs up whole, first; the others each relation's own writes
    return Plan(kind=kind, stages=(
        Stage(name=StageName.PREFLIGHT),
        *([Stage(name=StageName.APPROVE)] if kind == RunKind.DECISIONS else []),
        Stage(name=StageName.ACQUIRE_LOCK, role=Role.SETUP),
        *([Stage(name=StageName.BACKUP, skipped_by_dry_run=True)] if whole else []),
        Stage(name=StageName.CREATE_INDEXES, skipped_by_dry_run=True),
        *(Stage(name=StageName.BACKFILL, step=step, phases=tuple(REGISTRY[step].phase_names(kind)),
                backs_up=not whole) for step in chosen),
        Stage(name=StageName.VALIDATE),
        Stage(name=StageName.CONCLUDE),
        Stage(name=StageName.SUGGEST, skipped_by_dry_run=True),
        Stage(name=StageName.HOUSEKEEPING, skipped_by_dry_run=True),
        Stage(name=StageName.REPORT),
        Stage(name=StageName.RELEASE_LOCK, role=Role.TEARDOWN),
    ))
