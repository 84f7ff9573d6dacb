"""
### linkage_migration: link delivery statuses to orders and users to customer profiles

Runs migrations **002** (`delivery_statuses.order_id`) and **003**
(`users.customer_v2_id` ⇄ `customers_v2.user_id`) against the database of the
`mongo_default` connection, safely enough for a live production database:

1. `preflight` opens (or resumes) the linkage run `linkage_migration:<this DAG run's id>`;
   `acquire_lock` takes the lease;
2. `backup` (mongodump layout, verified) and `create_indexes`;
3. `backfill_order_delivery` and `backfill_user_customer`: one mapped task per
   partition and phase, every batch journaled before it is written;
4. `validate` runs the Great Expectations suites and judges the run **on what it
   wrote**: a violation in a document it wrote fails it; violations it found but
   did not cause are *drift* (review items, a `drift found` alert, the run is kept);
5. `decide` → `finalize`, or `rollback` when validation failed;
6. `report` ends the DAG run with the outcome (failed when rolled back) and its note;
   `release_lock` (teardown) runs whatever happened.

**Dry run** computes every count and the drift it finds and writes nothing: the write
tasks show as *skipped*. **Retry or clear** a failed task to resume the same run from
its journal. Undo a past run with the `linkage_rollback` DAG, or from the **Linkage**
view (*Linkage* in the navigation bar). Runbook: `docs/RUNBOOK.md`; contract: `docs/CONTRACT.md`.
"""

import pendulum

from linkage.airflow.dag_factory import build_pipeline_dag
from linkage.airflow.params import form
from linkage.core.models import RunKind

build_pipeline_dag(
    kind=RunKind.MIGRATE,
    dag_id="linkage_migration",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    doc_md=__doc__,
    tags=["linkage", "migration", "mongodb"],
    params=form(),
)
