"""The in-process executor: a run's plan carried out stage by stage (the CLI, benches, tests); and undoing one.

It runs exactly the stages of `linkage.run.plan.run_plan`, in their order, calling
the same stage functions the Airflow tasks call; only how a stage is carried
out is its own (the lease is a context held for the run, a backfill's
partitions are threads: planned, then backed up when the stage says so, then
written phase by phase). Each stage's seconds go in the run record.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack

from linkage.core.models import RunKind
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.plan import Plan, Stage, StageName, run_plan
from linkage.run.record import RunReport
from linkage.run.record_parts import RollbackOutcome
from linkage.run.session import Linkage
from linkage.stages.apply import write_step
from linkage.stages.approval import approve, preview
from linkage.stages.backfill import record_step, run_step
from linkage.stages.backup import take_backup
from linkage.stages.conclude import conclude
from linkage.stages.housekeeping import housekeeping
from linkage.stages.indexes import create_indexes
from linkage.stages.preflight import preflight
from linkage.stages.rollback import rollback, rollback_target
from linkage.stages.suggest import suggest
from linkage.stages.validate import validate_run


class _Execution:
    """One plan carried out: the stages' work, and the lease held between its setup and its teardown."""

    def __init__(self, lk: Linkage, run_id: str, show_progress: bool) -> None:
        self.lk, self.run_id, self.show_progress = lk, run_id, show_progress
        self.held = ExitStack()
        self.dry_run = lk.record(run_id).dry_run
        self.work: dict[StageName, Callable[[Stage], object]] = {
            StageName.PREFLIGHT: lambda stage: preflight(lk, run_id),
            StageName.APPROVE: self.approve,
            StageName.ACQUIRE_LOCK: self.acquire,
            StageName.BACKUP: lambda stage: take_backup(lk, run_id),
            StageName.CREATE_INDEXES: lambda stage: create_indexes(lk, run_id),
            StageName.BACKFILL: self.backfill,
            StageName.VALIDATE: lambda stage: validate_run(lk, run_id),
            StageName.CONCLUDE: lambda stage: conclude(lk, run_id),
            StageName.SUGGEST: lambda stage: suggest(lk, run_id),
            StageName.REPORT: lambda stage: None,  # the caller prints the run's report
            StageName.HOUSEKEEPING: lambda stage: housekeeping(lk, run_id),
            StageName.RELEASE_LOCK: lambda stage: self.held.close(),
        }

    def approve(self, stage: Stage) -> None:
        """In this process the person running the command is the approver (the run record says so): of the
        others' decisions only, their own stay pending for someone else."""
        approver = self.lk.record(self.run_id).triggered_by
        preview(self.lk, self.run_id, approver)
        if not self.dry_run:
            approve(self.lk, self.run_id, approved=True, by=approver, via="cli")

    def backfill(self, stage: Stage) -> None:
        """Plan the relation, back up what it will write (when the stage says so), write it; its counts."""
        step = str(stage.step)
        started = time.monotonic()
        run_step(self.lk, self.run_id, step, stage.phases, show_progress=self.show_progress)
        if not self.dry_run:
            if stage.backs_up:  # timed on its own: a night's breakdown shows what its targeted backups cost
                backed_up = time.monotonic()
                take_backup(self.lk, self.run_id, step)
                self.lk.runs.record_timing(self.run_id, f"backup_{step}", time.monotonic() - backed_up)
            write_step(self.lk, self.run_id, step, stage.phases, f"{socket.gethostname()}:{os.getpid()}:cli")
        record_step(self.lk, self.run_id, step, time.monotonic() - started)

    def acquire(self, stage: Stage) -> None:
        if not self.dry_run:  # a dry run writes nothing, so it takes no lease
            self.held.enter_context(self.lk.hold(self.run_id))

    def run(self, plan: Plan) -> None:
        with self.held:
            try:
                for stage in plan.stages:
                    if stage.skipped_by_dry_run and self.dry_run:
                        continue
                    started = time.monotonic()
                    self.work[stage.name](stage)
                    self.lk.runs.record_timing(self.run_id, stage.id, time.monotonic() - started)
            except Exception as exc:
                self.lk.runs.fail_if_running(self.run_id, str(exc))
                raise


def execute(lk: Linkage, plan: Plan, run_id: str, *, show_progress: bool = False) -> RunReport:
    """Carry out `plan` for the run `run_id` in this process; the run's report."""
    _Execution(lk, run_id, show_progress).run(plan)
    return lk.record(run_id).report()


def migrate(lk: Linkage, params: MigrationParams, triggered_by: str, *, kind: RunKind = RunKind.MIGRATE,
            new: bool = False, show_progress: bool = False) -> RunReport:
    """Start (or resume) a run of `kind` and carry out its plan: backup, indexes, the chosen steps, validation,
    the verdict; resumable, locked.

    `kind=RECONCILE` is the nightly job: the same run, repairing one-sided pairs
    and linking only what is still unlinked. A dry run takes no lock and no
    backup and writes nothing to the app's collections or the review queue; it
    computes and records the counts and the drift it found.
    """
    from linkage.validation.gate import warm_up

    warm_up()
    run_id, _ = start_run(lk, params, triggered_by, kind=kind, new=new)
    return execute(lk, run_plan(kind, lk.record(run_id).params.steps), run_id, show_progress=show_progress)


def undo_run(lk: Linkage, given: str) -> RollbackOutcome:
    """Roll back a past run, named by either id, under its lease (`linkage rollback`); refused before the
    lease is taken, the update probe sent once, by `rollback`."""
    run = rollback_target(lk, given, probe=False)
    with lk.hold(run.id):
        return rollback(lk, run.id)
