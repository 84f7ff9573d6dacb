"""
### linkage_rollback: undo a past linkage run

Give the run to undo in `run_id`: either its **linkage run id** (e.g.
`linkage_migration:manual__2026-11-26T01:00:00+00:00`, as `linkage status` and the
Linkage view show it) or simply the **Airflow DAG run id** it belongs to
(`manual__2026-11-26T01:00:00+00:00`). The Linkage view's *Roll back this run* link
opens this form with it filled in.

The run is undone through its journal: each link field goes back to its
before-image **only where it still holds the value the run wrote**, so anything
the app changed since is kept (counted as `kept`). An unknown id or a dry run fails
`check_run` and touches nothing. A run already rolled back is reported as such and
nothing is done twice. The outcome is recorded on the run (`state: rolled_back`).
"""

import pendulum
from airflow.sdk import Param, chain, dag

from linkage.airflow import rollback as tasks
from linkage.airflow.dag_factory import teardown_of
from linkage.airflow.tasks import RETRIES


@dag(
    dag_id="linkage_rollback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    catchup=False,
    max_active_runs=1,
    tags=["linkage", "rollback", "mongodb"],
    doc_md=__doc__,
    default_args={**RETRIES, "owner": "data-engineering"},
    params={"run_id": Param("", type="string", minLength=1, maxLength=200, title="Run to roll back",
                            description="The linkage run id (linkage_migration:manual__...) or the Airflow DAG run "
                                        "id it belongs to (manual__...).")},
)
def linkage_rollback() -> None:
    linkage_run = tasks.check_run()
    lock = tasks.acquire_lock(linkage_run)
    chain(lock, tasks.rollback(linkage_run), teardown_of(tasks.release_lock)(linkage_run).as_teardown(setups=lock))


linkage_rollback()
