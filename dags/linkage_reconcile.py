"""
### linkage_reconcile: keep the links linked, every night

The nightly job, at 02:30 in the business timezone. It links what is still
unlinked (delivery statuses and customer accounts created since the last run,
or unmatched before and matchable now), found through the link-field indexes,
and completes one-sided user ⇄ customer pairs where uniqueness allows. It goes
through the same backed-up, journaled, locked, validated pipeline as
`linkage_migration`, and publishes the asset `linkage://app/links` when it
succeeds, so downstream billing and login DAGs can run on fresh links.
"""

import pendulum
from airflow.sdk import Asset, Param

from linkage.dag_factory import build_pipeline_dag
from linkage.models import MigrationParams, Step

DEFAULTS = MigrationParams()
LINKS = Asset("linkage://app/links")

build_pipeline_dag(
    kind="reconcile",
    dag_id="linkage_reconcile",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    doc_md=__doc__,
    tags=["linkage", "reconcile", "nightly", "mongodb"],
    outlets=[LINKS],
    params={
        "steps": Param([s.value for s in Step], type="array", items={"type": "string", "enum": [s.value for s in Step]},
                       description="Relations to reconcile."),
        "dry_run": Param(False, type="boolean", description="Count only; write nothing."),
        "batch_size": Param(DEFAULTS.batch_size, type="integer", minimum=1, maximum=50_000),
        "partitions": Param(1, type="integer", minimum=1, maximum=64,
                            description="A nightly delta is small: one partition unless the backlog is large."),
        "rollback_on_failure": Param(True, type="boolean"),
        "min_order_coverage": Param(DEFAULTS.min_order_coverage, type="number", minimum=0, maximum=1),
        "min_user_coverage": Param(DEFAULTS.min_user_coverage, type="number", minimum=0, maximum=1),
    },
)
