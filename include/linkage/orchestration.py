"""What every Airflow task of linkage does around its pipeline call.

Open the engine on the `mongo_default` connection (its schema, or LINKAGE_DB,
names the database), work under the run's lease, and skip visibly when the task
would write during a dry run. Airflow is imported inside the functions, so this
module, like the rest of the package, imports without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from linkage.lock import Lease
from linkage.models import MigrationParams, RunState
from linkage.pipeline import Linkage
from linkage.settings import Settings

log = logging.getLogger("linkage.airflow")
T = TypeVar("T")
CONN_ID = os.environ.get("LINKAGE_CONN_ID", "mongo_default")


@contextmanager
def session(conn_id: str = CONN_ID) -> Iterator[Linkage]:
    """The engine on an Airflow MongoDB connection (TLS and options as the hook sets them)."""
    from airflow.providers.mongo.hooks.mongo import MongoHook

    hook = MongoHook(mongo_conn_id=conn_id)
    db = hook.connection.schema or os.environ.get("LINKAGE_DB") or "app"
    lk = Linkage(Settings.from_env(mongo_uri=hook.uri, db=db), hook.get_conn())
    try:
        yield lk
    finally:
        lk.close()


def linkage_run_id(kind: str, context: dict[str, Any]) -> str:
    """One linkage run per Airflow run, so a retried or cleared task continues the same run."""
    return f"{kind}:{context['run_id']}"


def triggered_by(context: dict[str, Any]) -> str:
    return f"airflow:{context['dag'].dag_id}/{context['run_id']}"


def params_from(form: dict[str, Any]) -> MigrationParams:
    """The trigger form's values as the engine's parameters (validated)."""
    return MigrationParams.model_validate({k: v for k, v in form.items() if k in MigrationParams.model_fields})


def skip(reason: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(reason)


def fail(reason: str) -> None:
    """Fail the task without retrying: retrying cannot change the outcome."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(reason)


def work(run_id: str, fn: Callable[[Linkage, Lease | None], T], *, writes: bool = False) -> T:
    """Run `fn` for a task of `run_id`: under the run's lease, or skipped in a dry run if it writes.

    A dry run holds no lease (it writes nothing to the app), so its tasks get None.
    """
    with session() as lk:
        if lk.params(run_id).dry_run:
            if writes:
                skip("dry run: this task writes to the app's collections, so it is skipped")
            return fn(lk, None)
        with lk.joined(run_id) as lease:
            return fn(lk, lease)


def take_lease(run_id: str) -> None:
    """Acquire the run's lease and park it for the tasks that follow (setup task).

    A dry run writes nothing and takes no lease; the task still succeeds, since a
    skipped setup task would skip every task in its scope.
    """
    with session() as lk:
        if lk.params(run_id).dry_run:
            log.info("dry run: writes nothing, so it takes no lock")
            return
        owner = lk.runs.get(run_id)["triggered_by"]
        Lease.acquire(lk.lock, run_id, owner, lk.settings.lock_ttl_seconds).park()


def release_lease(run_id: str) -> bool:
    """Release the run's lease whatever happened (teardown task)."""
    from linkage.lock import release_run

    with session() as lk:
        released = release_run(lk.lock, run_id)
    log.info("lock %s for %s", "released" if released else "was not held", run_id)
    return released


def record_failure(context: dict[str, Any]) -> None:
    """on_failure_callback: the run record says which task failed and why."""
    run_id = context["ti"].xcom_pull(task_ids="preflight")
    if not run_id:
        return
    reason = f"task {context['ti'].task_id} failed: {context.get('exception')}"[:500]
    with session() as lk:
        lk.runs.coll.update_one({"_id": run_id, "state": RunState.RUNNING.value},
                                {"$set": {"state": RunState.FAILED.value, "error": reason}})
