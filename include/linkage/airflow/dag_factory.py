"""The DAGs of `linkage_migration`, `linkage_reconcile` and `linkage_apply_decisions`: the run's plan mapped
onto Airflow tasks.

The plan (`linkage.run.plan.run_plan`) says which stages run in which order; this
module only says which Airflow task carries out each stage, and wires them in
the plan's order:

    preflight [>> request_approval >> approve: a decisions run] >> acquire_lock (setup)
      [>> backup: a migration, whole] >> create_indexes
      >> backfill_<step> (one group per registered step: per phase, a mapped task per partition planning into
         the journal; [a reconcile's backup of what the relation will write]; per phase, a mapped task per
         partition writing what it planned)
      >> validate >> decide -> finalize | rollback >> suggest >> housekeeping >> report
      >> release_lock (teardown, always)

A stage without an Airflow task is an error when the DAG is parsed. The DAG
files own the docs, Params and schedules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from airflow.sdk import Param, TaskGroup, chain, dag

from linkage.airflow import tasks
from linkage.airflow.approval import approval, request_approval
from linkage.core.models import RunKind
from linkage.core.settings import Settings
from linkage.run.events import Event
from linkage.run.plan import Stage, StageName, run_plan


def teardown_of(task: Any) -> Any:
    """A fresh copy of a module-level teardown task: calling one marks its arguments, so a second DAG
    built in the same process (every DAG file after the first, every DagBag reparse) would be refused."""
    return task.override()


def backfill(stage: Stage) -> TaskGroup:
    """One task group per step: per phase, a task cutting partitions and one mapped instance per partition
    planning it; the relation's own backup when the stage takes one; then per phase, one mapped instance per
    partition writing what it planned (phase after phase, as the run's writes always went)."""
    step = str(stage.step)
    with TaskGroup(group_id=stage.id, tooltip=f"{step}: plan, back up, write; one mapped task per partition") \
            as group:
        cut: dict[str, Any] = {}
        work: list[Any] = []
        for phase in stage.phases:
            cut[phase] = tasks.partitions.override(task_id=f"{phase}_partitions")(step, phase)
            work += [cut[phase], tasks.run_partition.override(task_id=phase).partial(step=step, phase=phase)
                     .expand(index=cut[phase])]
        if stage.backs_up:
            work.append(tasks.backup_relation.override(task_id="backup")(step))
        work += [tasks.write_partition.override(task_id=f"write_{phase}").partial(step=step, phase=phase)
                 .expand(index=cut[phase]) for phase in stage.phases]
        chain(*work, tasks.record_counts.override(task_id="record_counts")(step))
    return group


def _tasks(kind: RunKind, lock: Any, outlets: list[Any]) -> dict[StageName, Callable[[Stage], list[Any]]]:
    """The Airflow task(s) of each stage, in the order they chain (a list within the list: parallel branches)."""
    return {
        StageName.PREFLIGHT: lambda stage: [tasks.preflight(kind.value)],
        StageName.APPROVE: lambda stage: [request_approval(), approval(Settings.from_env())],
        StageName.ACQUIRE_LOCK: lambda stage: [lock],
        StageName.BACKUP: lambda stage: [tasks.backup()],
        StageName.CREATE_INDEXES: lambda stage: [tasks.create_indexes()],
        StageName.BACKFILL: lambda stage: [backfill(stage)],
        StageName.VALIDATE: lambda stage: [tasks.validate()],
        StageName.CONCLUDE: lambda stage: [tasks.decide(), [tasks.finalize.override(outlets=outlets)(),
                                                            tasks.rollback()]],
        StageName.SUGGEST: lambda stage: [tasks.suggest()],
        StageName.REPORT: lambda stage: [tasks.report()],
        StageName.HOUSEKEEPING: lambda stage: [tasks.housekeeping()],
        StageName.RELEASE_LOCK: lambda stage: [teardown_of(tasks.release_lock)().as_teardown(setups=lock)],
    }


def build_pipeline_dag(*, kind: RunKind, dag_id: str, schedule: Any, doc_md: str, params: dict[str, Param],
                       tags: list[str], start_date: datetime, outlets: list[Any] | None = None) -> Any:
    plan = run_plan(kind)

    @dag(dag_id=dag_id, schedule=schedule, start_date=start_date, catchup=False, max_active_runs=1, tags=tags,
         doc_md=doc_md, params=params,
         default_args={**tasks.RETRIES, "owner": "data-engineering", "on_failure_callback": tasks.on_failure(
             Event.TASK_FAILED)})
    def pipeline() -> None:
        of_stage = _tasks(kind, tasks.acquire_lock(), outlets or [])
        chain(*[node for stage in plan.stages for node in of_stage[stage.name](stage)])

    return pipeline()
