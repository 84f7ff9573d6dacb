"""The task graph shared by `linkage_migration` and `linkage_reconcile`: wiring only.

    preflight >> acquire_lock (setup) >> backup >> create_indexes
      >> backfill_<step> (one group per registered step, one mapped task per phase)
      >> validate >> decide -> finalize | rollback >> report >> release_lock (teardown, always)

The tasks live in `linkage.airflow.tasks`; the steps and their phases come from
the registry (`linkage.steps.REGISTRY`), so a new relation needs no change here.
The DAG files own the docs, Params and schedules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import Param, TaskGroup, chain, dag

from linkage.airflow import tasks
from linkage.alerts import Event
from linkage.models import RunKind, Step
from linkage.pipeline import phase_names
from linkage.steps import REGISTRY


def teardown_of(task: Any) -> Any:
    """A fresh copy of a module-level teardown task: calling one marks its arguments, so a second DAG
    built in the same process (every DAG file after the first, every DagBag reparse) would be refused."""
    return task.override()


def backfill(step: Step, kind: RunKind) -> TaskGroup:
    """One task group per step: per phase, a task cutting partitions and one mapped instance per partition."""
    with TaskGroup(group_id=f"backfill_{step}", tooltip=f"{step}: one mapped task per phase") as group:
        previous: Any = None
        for phase in phase_names(step, kind):
            parts = tasks.partitions.override(task_id=f"{phase}_partitions")(step.value, phase)
            mapped = tasks.run_partition.override(task_id=phase).partial(step=step.value, phase=phase).expand(
                index=parts)
            if previous is not None:
                previous >> parts
            previous = mapped
        previous >> tasks.record_counts.override(task_id="record_counts")(step.value)
    return group


def build_pipeline_dag(*, kind: RunKind, dag_id: str, schedule: Any, doc_md: str, params: dict[str, Param],
                       tags: list[str], start_date: datetime, outlets: list[Any] | None = None) -> Any:
    @dag(dag_id=dag_id, schedule=schedule, start_date=start_date, catchup=False, max_active_runs=1, tags=tags,
         doc_md=doc_md, params=params,
         default_args={**tasks.RETRIES, "owner": "data-engineering", "on_failure_callback": tasks.on_failure(
             Event.TASK_FAILED)})
    def pipeline() -> None:
        lock = tasks.acquire_lock()
        chain(tasks.preflight(kind.value), lock, tasks.backup(), tasks.create_indexes(),
              *[backfill(step, kind) for step in REGISTRY],
              tasks.validate(),
              tasks.decide(),
              [tasks.finalize.override(outlets=outlets or [])(),
               tasks.rollback.override(on_failure_callback=tasks.on_failure(Event.ROLLBACK_FAILED))()],
              tasks.report(),
              teardown_of(tasks.release_lock)().as_teardown(setups=lock))

    return pipeline()
