"""
### linkage_reconcile: keep the links linked, every night

The nightly job, at 02:30 Asia/Kolkata. It first writes the review decisions a
second person approved (never one nobody approved), then repairs every one-sided
user ⇄ customer pair in the data, whatever wrote it, in both directions (the
missing side is set when nobody else claims it; otherwise a review item says
why), then links what is still unlinked (delivery statuses and customer accounts
created since the last run, or unmatched before and matchable now), found
through the link-field indexes. It goes through the same backed-up, journaled,
locked, validated pipeline as `linkage_migration`, is judged on what it wrote
(what the app broke meanwhile is *drift*: reported, alerted, never rolled back),
and publishes the asset `linkage://app/links` when it is kept, so downstream
billing and login DAGs can run on fresh links.

Run it with **Dry run** on first to see what tonight's run would do: it writes
nothing but its own run record and journal.
"""

import pendulum
from airflow.sdk import Asset

from linkage.airflow.dag_factory import build_pipeline_dag
from linkage.airflow.params import form
from linkage.airflow.schedule import LocalCronTimetable
from linkage.core.models import RunKind

LINKS = Asset("linkage://app/links")
NIGHTLY = LocalCronTimetable("30 2 * * *", timezone="Asia/Kolkata")

build_pipeline_dag(
    kind=RunKind.RECONCILE,
    dag_id="linkage_reconcile",
    schedule=NIGHTLY,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    doc_md=__doc__,
    tags=["linkage", "reconcile", "nightly", "mongodb"],
    outlets=[LINKS],
    params=form(descriptions={
        "partitions": "A nightly delta is small: one partition unless the backlog is large.",
        "dry_run": "Tonight's run as a report: what it would repair and link, and the drift it finds."}),
)
