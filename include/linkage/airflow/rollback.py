"""The tasks of `linkage_rollback`: undo one past linkage run, named by either id.

Nothing is touched before `check_run` has found the run and made sure it may be
undone (`linkage.stages.rollback.rollback_target`, the one place that refuses), so an
unknown id or a dry run fails that task alone, with a clear message and no
`ROLLBACK FAILED` alert (nothing failed to roll back). A run already rolled back
is reported as such, and nothing is done twice. The rollback raises its own
events (`rolled_back`, `rollback_failed`), delivered by Airflow's channel.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import get_current_context, setup, task, teardown

from linkage.airflow.connection import session
from linkage.airflow.context import fail
from linkage.airflow.notifier import LinkageAlertNotifier
from linkage.airflow.tasks import release_lease, take_lease, task_session
from linkage.core.errors import LinkageError
from linkage.core.models import RunState
from linkage.run.events import Event
from linkage.stages.rollback import rollback as roll_back
from linkage.stages.rollback import rollback_target

log = logging.getLogger("linkage.airflow")


def checked_run(context: Any) -> str:
    """The linkage run `check_run` found (for alerts raised by the later tasks)."""
    return str(context["ti"].xcom_pull(task_ids="check_run"))


@task(retries=0, on_failure_callback=None)
def check_run() -> str:
    """Finds the run (a linkage run id, or the id of the Airflow DAG run it belongs to); refuses a dry run."""
    given = str(get_current_context()["params"]["run_id"])
    with session() as lk:
        try:
            run = rollback_target(lk, given)
        except LinkageError as exc:
            fail(str(exc))
    if run.state == RunState.ROLLED_BACK:
        log.info("run %s was already rolled back: nothing to do", run.id)
    return run.id


@setup
@task
def acquire_lock(linkage_run: str) -> None:
    with session() as lk:
        take_lease(lk, linkage_run, f"rollback of {linkage_run}")


@task(on_failure_callback=[LinkageAlertNotifier(Event.TASK_FAILED, checked_run)])
def rollback(linkage_run: str) -> dict[str, Any]:
    """Undoes the run through its journal; the app's later writes are kept."""
    with task_session(get_current_context()) as lk, lk.joined(linkage_run):
        outcome = roll_back(lk, linkage_run)
    if outcome.already_rolled_back:
        log.info("run %s was already rolled back: nothing to do (earlier rollback: %s)", linkage_run, outcome)
    else:
        log.info("run %s rolled back: %s", linkage_run, outcome)
    return outcome.model_dump()


@teardown
@task
def release_lock(linkage_run: str) -> bool:
    return release_lease(linkage_run)
