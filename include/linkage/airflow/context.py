"""Finding a linkage run from an Airflow task's context, and failing or skipping a task on purpose."""

from __future__ import annotations

from typing import Any, NoReturn


def linkage_run_id(context: Any) -> str:
    """One linkage run per DAG run, named after it (`linkage_migration:manual__...`), so either finds the other
    and a retried or cleared task continues the same run."""
    return f"{context['dag'].dag_id}:{context['run_id']}"


def skip(reason: str) -> NoReturn:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(reason)


def fail(reason: str) -> NoReturn:
    """Fail the task without retrying: retrying cannot change the outcome."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(reason)
