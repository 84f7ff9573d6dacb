"""Issue 3 acceptance: the DAGs, parsed and run with dag.test() against the real wire server."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from linkage import pipeline
from linkage.models import MigrationParams
from linkage.settings import Settings
from oracle import expected_order_links, expected_user_links
from test_migration import APP, snapshot

pytestmark = pytest.mark.airflow
DAG_IDS = {"linkage_migration", "linkage_reconcile", "linkage_rollback"}
WRITE_TASKS = {"backup", "create_indexes"}


def states(dag_run: Any) -> dict[str, str]:
    """Task id -> state; a mapped task is reported once if all its instances agree."""
    seen: dict[str, set[str]] = {}
    for ti in dag_run.get_task_instances():
        seen.setdefault(ti.task_id, set()).add(str(ti.state))
    return {task: next(iter(s)) if len(s) == 1 else "mixed:" + ",".join(sorted(s)) for task, s in seen.items()}


def test_every_dag_imports_with_tags_docs_retries_and_no_catchup(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert DAG_IDS <= set(dagbag.dags)
    for dag_id in DAG_IDS:
        dag = dagbag.get_dag(dag_id)
        assert dag.tags and "linkage" in dag.tags
        assert dag.doc_md and len(dag.doc_md) > 200
        assert dag.catchup is False and dag.max_active_runs == 1
        assert dag.default_args["retries"] >= 1
        assert all(t.task_id in ("validate", "check_run") or t.retries >= 1 for t in dag.tasks)
    assert dagbag.get_dag("linkage_migration").schedule is None if hasattr(dagbag.get_dag("linkage_migration"), "schedule") else True
    assert "run_id" in dagbag.get_dag("linkage_rollback").params


def test_migration_dag_has_the_tasks_in_order(dagbag: Any) -> None:
    dag = dagbag.get_dag("linkage_migration")
    down = {t.task_id: set(t.downstream_task_ids) for t in dag.tasks}
    assert {"preflight", "acquire_lock", "backup", "create_indexes", "validate", "decide", "finalize", "rollback",
            "release_lock", "backfill_order_delivery.link", "backfill_user_customer.apply"} <= set(down)
    assert "acquire_lock" in down["preflight"]
    assert "backup" in down["acquire_lock"] and "create_indexes" in down["backup"]
    assert "backfill_order_delivery.link_partitions" in down["create_indexes"]
    assert "backfill_user_customer.keys_partitions" in down["backfill_order_delivery.record_counts"]
    assert "validate" in down["backfill_user_customer.record_counts"]
    assert down["decide"] == {"finalize", "rollback"}
    assert dag.get_task("acquire_lock").is_setup and dag.get_task("release_lock").is_teardown
    assert dag.get_task("backfill_order_delivery.link").is_mapped
    assert set(dag.params) >= {"steps", "dry_run", "batch_size", "rollback_on_failure", "min_order_coverage",
                               "min_user_coverage", "partitions"}


def test_migration_dag_links_like_the_engine_and_records_the_run(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: pipeline.Linkage) -> None:
    before = snapshot(db)
    run = dagbag.get_dag("linkage_migration").test(run_conf={"partitions": 2})
    got = states(run)
    assert got.pop("rollback") == "skipped"
    assert set(got.values()) == {"success"}, got
    assert str(run.state) == "success"

    order_links = expected_order_links(list(before["delivery_statuses"].values()), list(before["orders"].values()))
    user_links = expected_user_links(list(before["users"].values()), list(before["customers_v2"].values()))
    after = snapshot(db)
    for oid, doc in after["delivery_statuses"].items():
        assert doc.get("order_id") == order_links.get(oid, before["delivery_statuses"][oid].get("order_id"))
    for oid, doc in after["users"].items():
        assert doc.get("customer_v2_id") == user_links.get(oid, before["users"][oid].get("customer_v2_id"))

    record = lk.runs.get(f"migrate:{run.run_id}")
    assert record["state"] == "succeeded" and record["triggered_by"] == f"airflow:linkage_migration/{run.run_id}"
    assert record["params"]["partitions"] == 2 and record["validation"]["success"] is True
    assert record["backup"]["verified"] and record["preflight"]["counts"]["users"] == len(before["users"])
    for step, planted in seeded["planted"].items():
        assert {k: v for k, v in record["steps"][step]["counts"].items() if v} == planted
    assert len(record["partitions"]["order_delivery"]["link"]) == 2
    assert lk.lock.find_one() is None


def test_failed_validation_rolls_back_skips_finalize_and_releases_the_lock(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: pipeline.Linkage) -> None:
    before = snapshot(db)
    run = dagbag.get_dag("linkage_migration").test(run_conf={"min_order_coverage": 0.999})
    got = states(run)
    assert got["validate"] == "failed"
    assert got["rollback"] == "success" and got["finalize"] == "skipped" and got["release_lock"] == "success"
    assert snapshot(db) == before
    record = lk.runs.get(f"migrate:{run.run_id}")
    assert record["state"] == "rolled_back" and "order_coverage" in record["error"]
    alerts = list(db[airflow_env.collection("alerts")].find({"run_id": record["_id"]}))
    assert {a["event"] for a in alerts} >= {"validation_failed", "rolled_back"}
    assert lk.lock.find_one() is None


def test_dry_run_skips_the_write_tasks_and_changes_nothing(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: pipeline.Linkage) -> None:
    before = snapshot(db)
    run = dagbag.get_dag("linkage_migration").test(run_conf={"dry_run": True})
    got = states(run)
    for task in WRITE_TASKS | {"validate", "rollback"}:
        assert got[task] == "skipped", task
    assert got["finalize"] == "success" and got["backfill_order_delivery.link"] == "success"
    assert snapshot(db) == before
    record = lk.runs.get(f"migrate:{run.run_id}")
    assert record["dry_run"] and record["state"] == "succeeded"
    assert record["steps"]["order_delivery"]["counts"]["linked"] == seeded["planted"]["order_delivery"]["linked"]


def test_reconcile_links_new_documents_and_one_sided_pairs_then_does_nothing(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: pipeline.Linkage) -> None:
    assert pipeline.migrate(lk, MigrationParams(), "test")["state"] == "succeeded"
    order = db.orders.insert_one({"id": "new-order", "customer_id": "new-cust", "delivery_date": "2026-05-05",
                                  "status": "delivered"})
    db.delivery_statuses.insert_one({"id": "new-ds", "customer_id": "new-cust", "delivery_date": "2026-05-05"})
    db.customers_v2.insert_one({"id": "new-cust", "phone": "+91 91234 56789", "name": "New"})
    db.users.insert_one({"id": "new-user", "role": "customer", "phone": "9123456789"})
    one_sided = db.users.find_one({"customer_v2_id": {"$gt": ""}, "role": "customer"}, sort=[("_id", -1)])
    db.customers_v2.update_one({"id": one_sided["customer_v2_id"]}, {"$unset": {"user_id": ""}})
    lk.reviews.coll.update_one({"_id": lk.reviews.item_id("user_customer", one_sided["_id"])},
                               {"$set": {"step": "user_customer", "category": "one_sided", "status": "open",
                                         "document_oid": one_sided["_id"], "document_id": one_sided["id"],
                                         "candidate": one_sided["customer_v2_id"]}}, upsert=True)

    dag = dagbag.get_dag("linkage_reconcile")
    first = dag.test()
    assert str(first.state) == "success", states(first)
    assert db.delivery_statuses.find_one({"id": "new-ds"})["order_id"] == "new-order"
    assert db.users.find_one({"id": "new-user"})["customer_v2_id"] == "new-cust"
    assert db.customers_v2.find_one({"id": "new-cust"})["user_id"] == "new-user"
    assert db.customers_v2.find_one({"id": one_sided["customer_v2_id"]})["user_id"] == one_sided["id"]
    assert order.inserted_id

    between = snapshot(db)
    second = dag.test()
    assert str(second.state) == "success"
    record = lk.runs.get(f"reconcile:{second.run_id}")
    assert all(counts["counts"]["linked"] == 0 for counts in record["steps"].values())
    assert snapshot(db) == between


def test_rollback_dag_fails_clearly_on_an_unknown_run_and_restores_a_real_one(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: pipeline.Linkage,
        capfd: pytest.CaptureFixture[str]) -> None:
    dag = dagbag.get_dag("linkage_rollback")
    unknown = dag.test(run_conf={"run_id": "migrate:nope"})
    assert states(unknown)["check_run"] == "failed" and str(unknown.state) == "failed"
    out, err = capfd.readouterr()
    assert "unknown run id 'migrate:nope'" in out + err

    before = snapshot(db)
    result = pipeline.migrate(lk, MigrationParams(), "test")
    assert snapshot(db) != before
    restored = dag.test(run_conf={"run_id": result["run_id"]})
    assert set(states(restored).values()) == {"success"}
    assert snapshot(db) == before
    assert lk.runs.get(result["run_id"])["state"] == "rolled_back"
    assert APP
