"""
### linkage_migration: link delivery statuses to orders and users to customer profiles

Runs migrations **002** (`delivery_statuses.order_id`) and **003**
(`users.customer_v2_id` ⇄ `customers_v2.user_id`) against the database of the
`mongo_default` connection, safely enough for a live production database:

1. `preflight` opens (or resumes) a linkage run; `acquire_lock` takes the lease;
2. `backup` (mongodump layout, verified) and `create_indexes`;
3. `backfill_order_delivery` and `backfill_user_customer`: one mapped task per
   partition and phase, every batch journaled before it is written;
4. `validate` runs the Great Expectations suites;
5. `decide` → `finalize`, or `rollback` when validation failed;
6. `release_lock` (teardown) runs whatever happened.

**Dry run** computes every count and writes nothing: the write tasks show as
*skipped*. **Retry or clear** a failed task to resume the same run from its
journal. Rollback of a past run: the `linkage_rollback` DAG.
Runbook: `docs/RUNBOOK.md`; contract: `SPEC.md`.
"""

import pendulum
from airflow.sdk import Param

from linkage.dag_factory import build_pipeline_dag
from linkage.models import MigrationParams, Step

DEFAULTS = MigrationParams()

build_pipeline_dag(
    kind="migrate",
    dag_id="linkage_migration",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    doc_md=__doc__,
    tags=["linkage", "migration", "mongodb"],
    params={
        "steps": Param([s.value for s in DEFAULTS.steps], type="array",
                       items={"type": "string", "enum": [s.value for s in Step]},
                       title="Migrations to run", description="order_delivery (002) and/or user_customer (003)."),
        "dry_run": Param(DEFAULTS.dry_run, type="boolean", title="Dry run",
                         description="Compute and record every count; write nothing to the app's collections."),
        "batch_size": Param(DEFAULTS.batch_size, type="integer", minimum=1, maximum=50_000, title="Batch size",
                            description="Documents per journaled batch (one bulk write each)."),
        "partitions": Param(DEFAULTS.partitions, type="integer", minimum=1, maximum=64, title="Partitions",
                            description="Parallel key ranges per backfill phase (mapped task instances)."),
        "rollback_on_failure": Param(DEFAULTS.rollback_on_failure, type="boolean", title="Roll back on failed validation",
                                     description="Undo the run through its journal when an expectation fails."),
        "min_order_coverage": Param(DEFAULTS.min_order_coverage, type="number", minimum=0, maximum=1,
                                    title="Minimum order-link coverage",
                                    description="Share of delivery statuses that must carry an order_id afterwards."),
        "min_user_coverage": Param(DEFAULTS.min_user_coverage, type="number", minimum=0, maximum=1,
                                   title="Minimum user-link coverage",
                                   description="Share of customer accounts that must carry a customer_v2_id afterwards."),
    },
)
