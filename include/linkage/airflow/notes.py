"""Each linkage DAG run's note: the run's one-line summary, shown in the run header.

Tasks cannot write DAG run notes in Airflow 3 (they have no metadata database
access), so `report` leaves the summary in an XCom and this listener, loaded by
the plugin into the scheduler, copies it onto the DAG run when the run ends,
inside the scheduler's own transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger("linkage.airflow")
REPORT_TASK, NOTE = "report", "note"


def _note(session: Any, dag_run: Any) -> str | None:
    from airflow.models.xcom import XComModel

    row = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=REPORT_TASK,
                                             key=NOTE, limit=1)).first()
    return None if row is None else str(XComModel.deserialize_value(row))[:1000]


def _copy_note(dag_run: Any) -> None:
    """In the scheduler the DAG run belongs to its session: the note joins that transaction. A detached run
    (`dag.test()`) is looked up and noted in a session of its own."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        note = _note(session, dag_run)
        if note is not None:
            dag_run.note = note
        return
    with create_session() as own:
        attached = own.get(DagRun, dag_run.id)
        note = _note(own, dag_run)
        if attached is not None and note is not None:
            attached.note = note


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _copy_note(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _copy_note(dag_run)
