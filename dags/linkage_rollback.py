"""
### linkage_rollback: undo a past linkage run

Give the `linkage_run` of a `linkage_migration` or `linkage_reconcile` run (from
`linkage status`, the `linkage_runs` collection, or the run's `preflight` XCom).
The run is undone through its journal: each link field goes back to its
before-image **only where it still holds the value the run wrote**, so anything
the app changed since is kept. Idempotent: running it twice changes nothing more.
The outcome is recorded on the run (`state: rolled_back`, counts restored/kept).
"""

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, setup, task, teardown

from linkage import orchestration as orch
from linkage import pipeline
from linkage.alerts import Event
from linkage.lock import Lease
from linkage_alerts import LinkageAlertNotifier


@dag(
    dag_id="linkage_rollback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    catchup=False,
    max_active_runs=1,
    tags=["linkage", "rollback", "mongodb"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=15), "owner": "data-engineering",
                  "on_failure_callback": [LinkageAlertNotifier(Event.ROLLBACK_FAILED)]},
    params={"run_id": Param("", type="string", minLength=1, maxLength=200, title="Run to roll back",
                            description="The linkage run id, e.g. migrate:manual__2026-11-26T01:00:00+00:00")},
)
def linkage_rollback() -> None:
    @task(retries=0)
    def check_run(params: dict | None = None) -> str:
        """Fails at once, with a clear message, for an unknown run or a dry run."""
        linkage_run = params["run_id"].strip()
        with orch.session() as lk:
            run = lk.runs.coll.find_one({"_id": linkage_run})
        if run is None:
            orch.fail(f"unknown run id {linkage_run!r}: no such run in linkage_runs")
        if run.get("dry_run"):
            orch.fail(f"run {linkage_run} was a dry run: it wrote nothing to roll back")
        return linkage_run

    @setup
    @task
    def acquire_lock(linkage_run: str) -> None:
        with orch.session() as lk:
            Lease.acquire(lk.lock, linkage_run, f"rollback of {linkage_run}", lk.settings.lock_ttl_seconds).park()

    @task(on_success_callback=[LinkageAlertNotifier(Event.ROLLED_BACK)])
    def rollback(linkage_run: str) -> dict:
        return orch.work(linkage_run, lambda lk, lease: pipeline.rollback(lk, linkage_run, lease.guard))

    @teardown
    @task
    def release_lock(linkage_run: str) -> bool:
        return orch.release_lease(linkage_run)

    linkage_run = check_run()
    lock = acquire_lock(linkage_run)
    lock >> rollback(linkage_run) >> release_lock(linkage_run).as_teardown(setups=lock)


linkage_rollback()
