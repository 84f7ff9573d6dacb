"""
### linkage_apply_decisions: carry out what people decided in the review queue, after a second person approves

People decide review items the rules could not (the **Linkage** view, its JSON API, or a filled-in
review export: `linkage decide --file`). This DAG carries those decisions out, on demand, as a
linkage run like any other:

1. `preflight` opens the run `linkage_apply_decisions:<this DAG run's id>`; it carries out the
   decisions made **before** it started (later ones wait for the next run);
2. `request_approval` counts them (links to write, no-match decisions, clears, stale ones) and who
   decided, each "may be approved by anyone but" that person; `approve` waits in **Browse →
   Required Actions** for a second person (`LINKAGE_APPROVERS`, or any user); after
   `LINKAGE_APPROVAL_TIMEOUT_HOURS` it **rejects**. Four eyes: an approval approves the decisions of
   people other than the approver; the approver's own stay pending for someone else. Rejected:
   nothing is written, the others' decisions are marked `rejected`, their items return to the queue;
3. approved: `acquire_lock`, `create_indexes`, `backfill_<step>.decided` plans each approved decision into the
   journal (a decision whose document changed since it was made is *stale*: not written, its item
   back in the queue saying why), `backup` of exactly the documents it will change, `apply`,
   `validate` (judged on what it wrote), `decide` → `finalize`, or `rollback`;
4. `report` ends the DAG run with the outcome; `release_lock` (teardown) runs whatever happened.

Undo it later with `linkage_rollback` (either id): its decisions become `rolled_back` and their
items open again. The nightly `linkage_reconcile` carries out approved decisions first too (never a
pending one), through the same `decided` phase. Runbook: `docs/RUNBOOK.md`, "Clearing the review queue".
"""

import pendulum

from linkage.airflow.dag_factory import build_pipeline_dag
from linkage.airflow.params import form
from linkage.core.models import RunKind

build_pipeline_dag(
    kind=RunKind.DECISIONS,
    dag_id="linkage_apply_decisions",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    doc_md=__doc__,
    tags=["linkage", "review", "decisions", "mongodb"],
    params=form(descriptions={
        "dry_run": "What the run would write and which decisions are stale, without asking for approval."}),
)
