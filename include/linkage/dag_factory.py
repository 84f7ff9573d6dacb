"""The task graph shared by `linkage_migration` and `linkage_reconcile`.

    preflight >> acquire_lock (setup) >> backup >> create_indexes
      >> backfill_order_delivery >> backfill_user_customer >> validate
      >> decide -> finalize | rollback ;  release_lock (teardown, always)

Each backfill is a task group with one dynamically mapped task per phase, one
instance per partition (a range of the key the phase walks), so more workers
backfill faster; the lease, the journal and the checkpoints are per run and
per partition, so parallel instances and retries stay correct. The DAG files own the docs, params and
schedules; Airflow is imported when a DAG is built, not when this module is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from linkage import orchestration as orch
from linkage import pipeline
from linkage.alerts import Event
from linkage.models import RunState, Step

DEFAULT_RETRIES = 2
TASK_DOCS = {
    "preflight": "Connects, records the server, collection counts and configuration, and opens (or, on a "
                 "retry, resumes) the linkage run for this Airflow run.",
    "acquire_lock": "Takes the per-database migration lease (setup task); fails fast naming the holder.",
    "backup": "Backs up the collections the run writes, in mongodump's layout, and verifies the manifest. "
              "Skipped in a dry run.",
    "create_indexes": "Creates the indexes of SPEC §4 (idempotent; fallbacks reported). Skipped in a dry run.",
    "validate": "Runs the Great Expectations suites; fails (no retry) when an expectation fails.",
    "decide": "Branches to `finalize` when validation passed, to `rollback` when it failed and "
              "`rollback_on_failure` is set.",
    "finalize": "Marks the run succeeded and publishes its report (XCom `return_value`).",
    "rollback": "Undoes the run through its journal, keeping the app's later writes.",
    "release_lock": "Releases the lease whatever happened (teardown task).",
}


def build_pipeline_dag(*, kind: str, dag_id: str, schedule: Any, doc_md: str, params: dict[str, Any],
                       tags: list[str], start_date: datetime, outlets: list[Any] | None = None) -> Any:
    from airflow.sdk import TaskGroup, dag, get_current_context, setup, task, teardown
    from linkage_alerts import LinkageAlertNotifier

    default_args = {"retries": DEFAULT_RETRIES, "retry_delay": timedelta(seconds=15),
                    "retry_exponential_backoff": True, "owner": "data-engineering",
                    "on_failure_callback": [LinkageAlertNotifier(Event.TASK_FAILED), orch.record_failure]}

    @dag(dag_id=dag_id, schedule=schedule, start_date=start_date, catchup=False, max_active_runs=1, tags=tags,
         doc_md=doc_md, params=params, default_args=default_args)
    def linkage_pipeline() -> None:
        @task(doc_md=TASK_DOCS["preflight"])
        def preflight() -> str:
            context = get_current_context()
            with orch.session() as lk:
                linkage_run, resumed = pipeline.start_run(lk, orch.params_from(context["params"]), orch.triggered_by(context),
                                                     kind=kind, run_id=orch.linkage_run_id(kind, context))
                facts = pipeline.preflight(lk)
                lk.runs.update(linkage_run, preflight=facts)
            orch.log.info("%s run %s: %s", "resuming" if resumed else "starting", linkage_run, facts)
            return linkage_run

        @setup
        @task(doc_md=TASK_DOCS["acquire_lock"])
        def acquire_lock(linkage_run: str) -> None:
            orch.take_lease(linkage_run)

        @task(doc_md=TASK_DOCS["backup"])
        def backup(linkage_run: str) -> dict[str, Any]:
            return orch.work(linkage_run, lambda lk, _: pipeline.take_backup(lk, linkage_run), writes=True)

        @task(doc_md=TASK_DOCS["create_indexes"], trigger_rule="none_failed")
        def create_indexes(linkage_run: str) -> dict[str, Any]:
            return orch.work(linkage_run, lambda lk, _: pipeline.create_indexes(lk, linkage_run), writes=True)

        @task(trigger_rule="none_failed")
        def partitions(linkage_run: str, step: str, phase: str) -> list[int]:
            """Cuts the phase's source into ranges of its walk key (stored with the run); one mapped instance each."""
            def cut(lk: pipeline.Linkage, _: Any) -> list[int]:
                params = lk.params(linkage_run)
                if Step(step) not in params.steps:
                    orch.skip(f"step {step} not selected for this run")
                return [p.index for p in pipeline.partitions(lk, linkage_run, Step(step), phase, params.partitions)]
            return orch.work(linkage_run, cut)

        @task(max_active_tis_per_dagrun=8)
        def run_partition(linkage_run: str, step: str, phase: str, index: int) -> dict[str, int]:
            """One phase over one partition: batched, journaled, resumable (a retry continues)."""
            def run(lk: pipeline.Linkage, lease: Any) -> dict[str, int]:
                partition = pipeline.partition_at(lk, linkage_run, Step(step), phase, index)
                return pipeline.run_phase(lk, linkage_run, Step(step), phase, partition, lease.guard if lease else lambda: None)
            return orch.work(linkage_run, run)

        @task
        def record_counts(linkage_run: str, step: str) -> dict[str, int]:
            """The step's counts by category, summed over every partition's journal."""
            return orch.work(linkage_run, lambda lk, _: pipeline.record_step(lk, linkage_run, Step(step)))

        def backfill(linkage_run: Any, step: Step) -> TaskGroup:
            with TaskGroup(group_id=f"backfill_{step}", tooltip=f"migration {step}: one mapped task per phase") as group:
                previous = None
                for phase in pipeline.step_phases(step, kind):
                    parts = partitions.override(task_id=f"{phase}_partitions")(linkage_run, step.value, phase)
                    mapped = run_partition.override(task_id=phase).partial(
                        linkage_run=linkage_run, step=step.value, phase=phase).expand(index=parts)
                    if previous is not None:
                        previous >> parts
                    previous = mapped
                previous >> record_counts.override(task_id="record_counts")(linkage_run, step.value)
            return group

        @task(doc_md=TASK_DOCS["validate"], trigger_rule="none_failed", retries=0,
              on_failure_callback=[LinkageAlertNotifier(Event.VALIDATION_FAILED), orch.record_failure])
        def validate(linkage_run: str) -> dict[str, Any]:
            def judge(lk: pipeline.Linkage, _: Any) -> dict[str, Any]:
                if lk.params(linkage_run).dry_run:
                    orch.skip("dry run: the data did not change, nothing to validate")
                outcome = pipeline.validate_run(lk, linkage_run)
                orch.log.info("validation %s; data docs: %s", "passed" if outcome.success else "FAILED", outcome.data_docs)
                if not outcome.success:
                    orch.fail(pipeline.failure_reason(outcome))
                return {"success": True, "data_docs": outcome.data_docs}
            return orch.work(linkage_run, judge)

        @task.branch(doc_md=TASK_DOCS["decide"], trigger_rule="all_done")
        def decide(linkage_run: str) -> list[str]:
            with orch.session() as lk:
                run = lk.runs.get(linkage_run)
            validation = run.get("validation")
            if run.get("dry_run") or (validation and validation["success"]):
                return ["finalize"]
            if validation is None:
                return []  # an earlier task failed: nothing to decide; clear it to resume the run
            return ["rollback"] if run["params"]["rollback_on_failure"] else ["finalize"]

        @task(doc_md=TASK_DOCS["finalize"], outlets=outlets or [])
        def finalize(linkage_run: str) -> dict[str, Any]:
            with orch.session() as lk:
                validation = lk.runs.get(linkage_run).get("validation")
                if validation and not validation["success"]:
                    pipeline.finalize(lk, linkage_run, RunState.FAILED, lk.runs.get(linkage_run).get("error"))
                    orch.fail("validation failed and rollback_on_failure is off: the run is kept, marked failed")
                return pipeline.finalize(lk, linkage_run)

        @task(doc_md=TASK_DOCS["rollback"], retries=DEFAULT_RETRIES,
              on_success_callback=[LinkageAlertNotifier(Event.ROLLED_BACK)],
              on_failure_callback=[LinkageAlertNotifier(Event.ROLLBACK_FAILED)])
        def rollback(linkage_run: str) -> dict[str, Any]:
            def undo(lk: pipeline.Linkage, lease: Any) -> dict[str, Any]:
                pipeline.rollback(lk, linkage_run, lease.guard)
                return pipeline.report(lk, linkage_run)
            return orch.work(linkage_run, undo)

        @teardown
        @task(doc_md=TASK_DOCS["release_lock"])
        def release_lock(linkage_run: str) -> bool:
            return orch.release_lease(linkage_run)

        linkage_run = preflight()
        lock = acquire_lock(linkage_run)
        indexes = create_indexes(linkage_run)
        lock >> backup(linkage_run) >> indexes
        order_delivery = backfill(linkage_run, Step.ORDER_DELIVERY)
        user_customer = backfill(linkage_run, Step.USER_CUSTOMER)
        checked = validate(linkage_run)
        indexes >> order_delivery >> user_customer >> checked
        branch = decide(linkage_run)
        checked >> branch >> [finalize(linkage_run), rollback(linkage_run)] >> release_lock(linkage_run).as_teardown(setups=lock)

    return linkage_pipeline()
