"""The DAGs, parsed and run with dag.test() against the real wire server: task states, DAG run states
and notes, the data they leave (checked by the oracle), and the run record."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from pymongo.database import Database

from linkage.core.settings import Settings
from linkage.dev.seed import seed
from linkage.relations import REGISTRY
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate

from helpers import review_state, snapshot
from oracle import expected_order_links, expected_user_links

pytestmark = pytest.mark.airflow
DAG_IDS = {"linkage_migration", "linkage_reconcile", "linkage_rollback", "linkage_apply_decisions"}
#: The design's order: the whole backup first, then each relation planned AND written by its own group.
MIGRATION_ORDER = ["preflight", "acquire_lock", "backup", "create_indexes", "backfill_order_delivery.link_partitions",
                   "backfill_order_delivery.link", "backfill_order_delivery.write_link",
                   "backfill_order_delivery.record_counts", "backfill_user_customer.keys_partitions",
                   "backfill_user_customer.apply", "backfill_user_customer.write_keys",
                   "backfill_user_customer.write_apply", "backfill_user_customer.record_counts", "validate", "decide",
                   "suggest", "housekeeping", "report", "release_lock"]
#: A reconcile backs up, within each relation's group, what that relation planned, before writing it.
RECONCILE_ORDER = ["preflight", "acquire_lock", "create_indexes", "backfill_order_delivery.link",
                   "backfill_order_delivery.backup", "backfill_order_delivery.write_link",
                   "backfill_user_customer.apply", "backfill_user_customer.backup",
                   "backfill_user_customer.write_decided", "backfill_user_customer.write_apply",
                   "backfill_user_customer.record_counts", "validate", "decide", "suggest", "housekeeping", "report",
                   "release_lock"]


def states(dag_run: Any) -> dict[str, str]:
    """Task id -> state; a mapped task is reported once if all its instances agree."""
    seen: dict[str, set[str]] = {}
    for ti in dag_run.get_task_instances():
        seen.setdefault(ti.task_id, set()).add(str(ti.state))
    return {task: next(iter(s)) if len(s) == 1 else "mixed:" + ",".join(sorted(s)) for task, s in seen.items()}


def note_of(dag_run: Any) -> str | None:
    """The DAG run's note as the UI shows it (read back from the metadata database)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(DagRun).filter(DagRun.run_id == dag_run.run_id).one().note


def linkage_run(dag_id: str, dag_run: Any) -> str:
    return f"{dag_id}:{dag_run.run_id}"


def alerts(db: Database, settings: Settings, run_id: str) -> list[str]:
    return sorted(a["event"] for a in db[settings.collection("alerts")].find({"run_id": run_id}))


def test_every_dag_imports_with_docs_retries_titled_params_and_no_catchup(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert DAG_IDS <= set(dagbag.dags)
    for dag_id in DAG_IDS:
        dag = dagbag.get_dag(dag_id)
        assert "linkage" in dag.tags and len(dag.doc_md) > 200
        assert dag.catchup is False and dag.max_active_runs == 1
        assert all(t.task_id in ("validate", "check_run", "report") or t.retries >= 1 for t in dag.tasks)
        for name in dag.params:
            param = dag.params.get_param(name)
            assert param.schema.get("title") and len(param.description or "") > 20, (dag_id, name)
    # one default for each, everywhere: the model's (the CLI's flags default to it too)
    defaults = MigrationParams().model_dump(exclude={"thresholds"})
    for dag_id in ("linkage_migration", "linkage_reconcile"):
        form = dagbag.get_dag(dag_id).params
        assert {name: form[name] for name in defaults} == defaults, dag_id
    steps = dagbag.get_dag("linkage_migration").params.get_param("steps").schema
    assert steps["type"] == "array" and steps["examples"] == list(REGISTRY)  # the form's multi-select
    assert dagbag.get_dag("linkage_migration").timetable.__class__.__name__ == "NullTimetable"  # manual only
    nightly = dagbag.get_dag("linkage_reconcile").timetable
    assert nightly.summary == "30 2 * * * (Asia/Kolkata)"
    assert nightly.description == "At 02:30, Asia/Kolkata time (21:00 UTC)"


def test_the_graph_reads_as_the_pipeline(dagbag: Any) -> None:
    for dag_id, order in (("linkage_migration", MIGRATION_ORDER), ("linkage_reconcile", RECONCILE_ORDER)):
        dag = dagbag.get_dag(dag_id)
        down = {t.task_id: set(t.downstream_task_ids) for t in dag.tasks}
        for earlier, later in zip(order, order[1:], strict=False):
            assert later in down[earlier] or dag.get_task(later).upstream_task_ids & _reachable(down, earlier), \
                (dag_id, earlier, later)
        assert down["preflight"] == {"acquire_lock"}  # no fan of XCom edges from preflight
        assert down["decide"] == {"finalize", "rollback"}
        assert down["finalize"] == down["rollback"] == {"suggest"} and down["suggest"] == {"housekeeping"}
        assert down["housekeeping"] == {"report"}
        assert dag.get_task("acquire_lock").is_setup and dag.get_task("release_lock").is_teardown
        assert dag.get_task("backfill_order_delivery.link").is_mapped
        assert dag.get_task("backfill_order_delivery.write_link").is_mapped
    migration = {t.task_id for t in dagbag.get_dag("linkage_migration").tasks}
    assert "apply" not in migration and not {"backfill_order_delivery.backup", "backfill_user_customer.backup"} & \
        migration  # the migration backed up whole, first: its groups write without a backup of their own
    migration_down = {t.task_id: set(t.downstream_task_ids) for t in dagbag.get_dag("linkage_migration").tasks}
    assert migration_down["acquire_lock"] >= {"backup"} and migration_down["backup"] == {"create_indexes"}
    reconcile = {t.task_id for t in dagbag.get_dag("linkage_reconcile").tasks}
    assert {"backfill_user_customer.repair_from_users", "backfill_user_customer.repair_from_customers"} <= reconcile
    # people's decisions: asked of a second person before the lease, then the decided phase alone
    decisions = dagbag.get_dag("linkage_apply_decisions")
    down = {t.task_id: set(t.downstream_task_ids) for t in decisions.tasks}
    assert down["preflight"] == {"request_approval"} and down["request_approval"] == {"approve"}
    assert down["approve"] == {"acquire_lock"}
    approve = decisions.get_task("approve")
    assert type(approve).__mro__[1].__name__ == "ApprovalOperator" and approve.defaults == ["Reject"]
    assert approve.response_timeout.total_seconds() == 24 * 3600
    assert {t.task_id for t in decisions.tasks if t.task_id.startswith("backfill_")} == {
        f"backfill_{step}.{task}" for step in ("order_delivery", "user_customer")
        for task in ("decided_partitions", "decided", "backup", "write_decided", "record_counts")}


def _reachable(down: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in down[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


@pytest.mark.slow
def test_migration_dag_links_like_the_engine_records_the_run_and_notes_it(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: Linkage) -> None:
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

    record = lk.record(linkage_run("linkage_migration", run))
    assert record.state == "succeeded" and record.triggered_by == f"airflow:linkage_migration/{run.run_id}"
    assert record.airflow and record.airflow.dag_run_id == run.run_id
    assert record.params.partitions == 2 and record.validation and record.validation.success
    assert record.backup and record.backup.verified
    for step, planted in seeded["planted"].items():
        assert {k: v for k, v in record.counts()[step].items() if v} == planted
    assert len(record.step("order_delivery").phases["link"].partitions or []) == 2
    assert lk.lock.find_one() is None
    note = note_of(run)
    linked = seeded["planted"]["order_delivery"]["linked"]
    assert note == record.summary() and note.startswith(f"linked order_delivery {linked:,}, user_customer ")
    assert "coverage delivery_statuses.order_id" in note and f"drift found: {record.drift_total} items" in note


@pytest.mark.slow
def test_a_rolled_back_run_ends_its_dag_run_failed_with_the_reason_as_its_note(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: Linkage) -> None:
    before = snapshot(db)
    run = dagbag.get_dag("linkage_migration").test(run_conf={"min_order_coverage": 0.999})
    got = states(run)
    assert (got["validate"], got["rollback"], got["finalize"]) == ("failed", "success", "skipped")
    assert (got["report"], got["release_lock"], str(run.state)) == ("failed", "success", "failed")
    assert snapshot(db) == before
    record = lk.record(linkage_run("linkage_migration", run))
    assert record.state == "rolled_back" and record.validation
    observed = record.validation.failed[0].observed
    assert note_of(run) == f"rolled back: order_coverage observed {observed}, expected >= 0.999"
    assert alerts(db, airflow_env, record.id) == ["rolled_back", "validation_failed"]  # drift pages kept runs only
    assert lk.lock.find_one() is None


@pytest.mark.slow
def test_a_dry_run_skips_the_write_tasks_and_changes_nothing_but_its_own_record(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: Linkage) -> None:
    before, queue = snapshot(db), review_state(db, airflow_env)
    run = dagbag.get_dag("linkage_migration").test(run_conf={"dry_run": True})
    got = states(run)
    assert (got["backup"], got["create_indexes"], got["rollback"]) == ("skipped", "skipped", "skipped")
    assert got["backfill_order_delivery.write_link"] == got["backfill_user_customer.write_apply"] == "skipped"
    assert {got[t] for t in ("validate", "finalize", "report", "backfill_order_delivery.link")} == {"success"}
    assert str(run.state) == "success"
    assert snapshot(db) == before and review_state(db, airflow_env) == queue
    record = lk.record(linkage_run("linkage_migration", run))
    assert record.dry_run and record.state == "succeeded"
    assert record.counts()["order_delivery"]["linked"] == seeded["planted"]["order_delivery"]["linked"]
    assert note_of(run).startswith("dry run: would link order_delivery ")
    assert alerts(db, airflow_env, record.id) == []  # a dry run reports drift in its record, it does not page


@pytest.mark.slow
def test_reconcile_dry_then_real_on_drifted_data(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: Linkage) -> None:
    assert migrate(lk, MigrationParams(), "test").state == "succeeded"
    # a day of app writes: a new linkable pair, a delivery with one order, a one-sided pair, a deleted order
    db.orders.insert_one({"id": "new-order", "customer_id": "new-cust", "delivery_date": "2026-05-05",
                          "status": "delivered"})
    db.delivery_statuses.insert_one({"id": "new-ds", "customer_id": "new-cust", "delivery_date": "2026-05-05"})
    db.customers_v2.insert_one({"id": "new-cust", "phone": "+91 91234 56789", "name": "New"})
    db.users.insert_one({"id": "new-user", "role": "customer", "phone": "9123456789"})
    db.customers_v2.insert_one({"id": "app-cust", "phone": "9000000001", "user_id": "app-user"})
    db.users.insert_one({"id": "app-user", "role": "customer", "phone": "8000000001"})
    linked = db.delivery_statuses.find_one({"order_id": {"$gt": ""}, "id": {"$ne": "new-ds"}}, sort=[("_id", -1)])
    db.orders.delete_one({"id": linked["order_id"]})
    before, queue = snapshot(db), review_state(db, airflow_env)

    dag = dagbag.get_dag("linkage_reconcile")
    dry = dag.test(run_conf={"dry_run": True})
    got = states(dry)
    assert (got["backfill_user_customer.backup"], got["create_indexes"], got["rollback"]) == ("skipped",) * 3
    assert got["backfill_user_customer.write_repair_from_customers"] == "skipped"
    assert got["backfill_user_customer.repair_from_customers"] == "success" and str(dry.state) == "success"
    assert snapshot(db) == before and review_state(db, airflow_env) == queue
    dry_record = lk.record(linkage_run("linkage_reconcile", dry))
    assert dry_record.drift and dry_record.drift.by_expectation["order_refs_dangling"] >= 1

    real = dag.test(run_conf={"dry_run": False})  # as a person would, switching dry run off in the form
    got = states(real)
    assert got.pop("rollback") == "skipped" and set(got.values()) == {"success"}, got
    assert str(real.state) == "success"
    record = lk.record(linkage_run("linkage_reconcile", real))
    assert record.state == "succeeded" and record.counts() == dry_record.counts()
    assert db.delivery_statuses.find_one({"id": "new-ds"})["order_id"] == "new-order"
    assert db.users.find_one({"id": "new-user"})["customer_v2_id"] == "new-cust"
    assert db.users.find_one({"id": "app-user"})["customer_v2_id"] == "app-cust"  # the one-sided pair, repaired
    assert db.delivery_statuses.find_one({"_id": linked["_id"]})["order_id"] == linked["order_id"]  # drift, kept
    item = lk.reviews.coll.find_one({"_id": lk.reviews.item_id("order_delivery", linked["_id"])})
    assert item["status"] == "open" and item["category"] == "dangling"
    assert "drift_found" in alerts(db, airflow_env, record.id)
    assert "drift found" in note_of(real)


@pytest.mark.slow
def test_rollback_dag_takes_either_id_refuses_unknown_and_dry_runs_quietly_and_never_undoes_twice(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: Linkage,
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    dag = dagbag.get_dag("linkage_rollback")
    unknown = dag.test(run_conf={"run_id": "manual__nope"})
    assert states(unknown) == {"check_run": "failed", "acquire_lock": "upstream_failed",
                               "rollback": "upstream_failed", "release_lock": "upstream_failed"}
    assert str(unknown.state) == "failed"
    out, err = capfd.readouterr()
    assert "unknown run id 'manual__nope'" in out + err
    planned = migrate(lk, MigrationParams(dry_run=True), "test")
    refused = dag.test(run_conf={"run_id": planned.run_id})
    assert states(refused)["check_run"] == "failed"
    assert "was a dry run: it wrote nothing to roll back" in "".join(capfd.readouterr())
    assert list(db[airflow_env.collection("alerts")].find({"event": "rollback_failed"})) == []

    before = snapshot(db)
    migration = dagbag.get_dag("linkage_migration").test()
    assert snapshot(db) != before
    restored = dag.test(run_conf={"run_id": migration.run_id})  # the Airflow DAG run id is enough
    assert set(states(restored).values()) == {"success"}
    assert snapshot(db) == before
    run_id = linkage_run("linkage_migration", migration)
    record = lk.record(run_id)
    assert record.state == "rolled_back" and record.rollback and record.rollback.kept == 0
    assert alerts(db, airflow_env, run_id).count("rolled_back") == 1

    again = dag.test(run_conf={"run_id": run_id})
    assert set(states(again).values()) == {"success"}
    assert f"run {run_id} was already rolled back: nothing to do" in caplog.text
    assert snapshot(db) == before and lk.record(run_id).rollback == record.rollback
    assert alerts(db, airflow_env, run_id).count("rolled_back") == 1


@pytest.mark.slow
def test_two_nights_of_the_reconcile_the_second_without_new_drift_pages_nobody(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: Linkage) -> None:
    assert migrate(lk, MigrationParams(), "test").state == "succeeded"  # the seed's drift pages once, here
    linked = db.delivery_statuses.find_one({"order_id": {"$gt": ""}}, sort=[("_id", -1)])
    db.orders.delete_one({"id": linked["order_id"]})  # tonight's new drift
    dag = dagbag.get_dag("linkage_reconcile")
    first = dag.test()
    assert str(first.state) == "success"
    assert alerts(db, airflow_env, linkage_run("linkage_reconcile", first)) == ["drift_found"]
    second = dag.test()  # the next night: nothing new
    record = lk.record(linkage_run("linkage_reconcile", second))
    assert str(second.state) == "success" and record.drift_total > 0
    assert alerts(db, airflow_env, record.id) == []
    assert record.paging and not record.paging.page and "none new since" in record.paging.why
    assert note_of(second).endswith(f"drift unchanged: {record.drift_total} open")


@pytest.mark.slow
def test_a_connection_to_a_database_that_is_not_the_apps_fails_preflight_once_and_creates_nothing(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 23: the Airflow preflight refuses a typo'd database through the same check as the CLI, without
    retrying, and no task or callback after it (the teardown, the failure alert) creates anything there."""
    typo = f"{db.name}p"
    host_port = airflow_env.mongo_uri.removeprefix("mongodb://").rstrip("/")
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", f"mongo://{host_port}/{typo}")
    run = dagbag.get_dag("linkage_migration").test()
    assert str(run.state) == "failed"
    preflight = next(ti for ti in run.get_task_instances() if ti.task_id == "preflight")
    assert str(preflight.state) == "failed" and preflight.try_number == 1, "retried a refusal"
    assert typo not in db.client.list_database_names()
    assert db[airflow_env.collection("alerts")].count_documents({}) == 0


@pytest.mark.slow
@pytest.mark.both_servers
def test_a_server_that_loses_concurrent_updates_fails_preflight_once_and_nothing_is_written(
        dagbag: Any, airflow_env: Settings, db: Database, request: pytest.FixtureRequest) -> None:
    """The DAG's preflight asks the same probe as the CLI (`linkage.mongo.concurrency`); where an update was lost
    (FerretDB) and nobody set LINKAGE_APP_QUIET, the run fails there without retrying and writes nothing to
    the app; where none was (nx), the same run goes on to succeed."""
    seed(db, customers=40, seed_value=5)
    before = snapshot(db)
    run = dagbag.get_dag("linkage_migration").test(run_conf={"min_user_coverage": 0, "min_order_coverage": 0})
    record = db[airflow_env.collection("runs")].find_one({"_id": linkage_run("linkage_migration", run)})
    probe = record["preflight"]["concurrent_updates"]
    assert probe["app_quiet"] is False
    if request.node.callspec.params["wire_server"] == "ferretdb":
        assert probe["kept"] < probe["sent"] == 100
        preflight = next(ti for ti in run.get_task_instances() if ti.task_id == "preflight")
        assert str(run.state) == "failed" and str(preflight.state) == "failed" and preflight.try_number == 1
        assert snapshot(db) == before
    else:
        assert probe["kept"] == probe["sent"] == 100 and str(run.state) == "success"


#: What the journal says about who wrote a batch: the task (a write task of the batch's own group), its map
#: index (the batch's own partition), its try and host.
APPLIED_BY = re.compile(r"^backfill_(?P<step>\w+)\.write_(?P<phase>\w+)\[(?P<partition>\d+)\] try (?P<try>\d+) on \S+$")


def fields_changed(before: dict[str, Any], after: dict[str, Any]) -> set[tuple[str, Any, str]]:
    """Every (collection, _id, field) whose value differs between two snapshots (no document comes or goes)."""
    assert {coll: set(docs) for coll, docs in after.items()} == {coll: set(docs) for coll, docs in before.items()}
    return {(coll, oid, field) for coll, docs in after.items() for oid, doc in docs.items()
            for field in {*doc, *before[coll][oid]} if doc.get(field) != before[coll][oid].get(field)}


def journaled_writers(lk: Linkage, run_id: str) -> dict[tuple[str, Any, str], re.Match[str]]:
    """Each link field the run wrote, with the task that wrote it (every written batch must name one)."""
    found = {}
    for record in lk.journal.records(run_id):
        if not record.writes:
            continue
        by = APPLIED_BY.match(record.applied_by or "")
        assert record.state == "applied" and by, (record.id, record.state, record.applied_by)
        assert (by["step"], by["phase"], int(by["partition"])) == (record.step, record.phase, record.partition)
        found.update({(w.coll, w.oid, w.field): by for w in record.writes})
    return found


@pytest.mark.slow
def test_the_migration_backs_up_first_and_only_its_backfill_groups_write_links(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: Linkage) -> None:
    before = snapshot(db)
    run = dagbag.get_dag("linkage_migration").test(run_conf={"partitions": 2, "batch_size": 100})
    assert str(run.state) == "success"
    tis = {(ti.task_id, ti.map_index): ti for ti in run.get_task_instances()}
    backup = tis[("backup", -1)]
    reads = [ti for (task, _), ti in tis.items() if task.startswith("backfill_") or task == "create_indexes"]
    assert reads and all(backup.end_date <= ti.start_date for ti in reads), "a task read the app before the backup"
    record = lk.record(linkage_run("linkage_migration", run))
    assert record.backup and record.backup.scope == "full"
    # every field that changed is a link a batch of the journal wrote, applied by a write task of its relation's
    # group (its own partition's instance): no other task changed the app's documents
    changed, writers = fields_changed(before, snapshot(db)), journaled_writers(lk, record.id)
    assert changed and changed <= set(writers)
    assert {by["step"] for by in writers.values()} == set(REGISTRY)
    for (task, index), ti in tis.items():
        if ".write_" in task:
            assert str(ti.state) == "success" and index >= 0, (task, index)


@pytest.mark.slow
def test_a_cleared_backfill_user_customer_resumes_its_relation_from_the_journal(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: Linkage,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The third user-customer batch fails its write task (no retry); a person clears the group (Airflow clears
    its downstream and its setup and teardown with it); the relation goes on from its journal: the batches
    already written are not written again, the failed one (pending) and the rest are, and the run ends as an
    uninterrupted one does: every link the oracle's, every count the seed's, validation passed."""
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState

    from linkage.stages import apply

    real, written = apply.apply_batch, []

    def third_fails(app: Database, record: Any, chunk: int) -> Any:
        if record.step == "user_customer" and len(written) == 2:
            raise AirflowFailException("injected: the worker lost its database mid-relation")
        written.append(record.id) if record.step == "user_customer" else None
        return real(app, record, chunk)

    monkeypatch.setattr(apply, "apply_batch", third_fails)
    before, when = snapshot(db), datetime.now(timezone.utc)
    dag = dagbag.get_dag("linkage_migration")
    failed = dag.test(logical_date=when, run_after=when, run_conf={"partitions": 1, "batch_size": 20})
    got = states(failed)
    assert str(failed.state) == "failed" and got["backfill_user_customer.write_apply"] == "failed", got
    run_id = linkage_run("linkage_migration", failed)
    assert lk.record(run_id).state == "failed" and lk.lock.find_one() is None
    journal = lk.journal.coll
    assert journal.count_documents({"run_id": run_id, "step": "user_customer", "state": "pending"}) == 1
    first_try = {d["_id"]: d["applied_by"] for d in journal.find({"_id": {"$in": written}})}

    pending = journal.find_one({"run_id": run_id, "step": "user_customer", "state": "pending"})["_id"]
    rewritten: list[str] = []

    def recorded(app: Database, record: Any, chunk: int) -> Any:
        rewritten.append(record.id)
        return real(app, record, chunk)

    monkeypatch.setattr(apply, "apply_batch", recorded)
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    group = [t.task_id for t in scheduler_dag.tasks if t.task_id.startswith("backfill_user_customer.")]
    cleared = scheduler_dag.partial_subset(task_ids=group, include_downstream=True, include_upstream=False)
    assert {"acquire_lock", "release_lock", "validate"} <= set(cleared.task_dict)  # its setup, teardown, downstream
    assert "backfill_order_delivery.write_link" not in cleared.task_dict
    cleared.clear(list(cleared.task_dict), run_id=failed.run_id, dag_run_state=DagRunState.RUNNING)
    resumed = dag.test(logical_date=when, run_after=when)
    assert resumed.run_id == failed.run_id and str(resumed.state) == "success", states(resumed)
    # (dag.test runs the tasks it finds done again too; they find their relation written and write nothing)
    # the clear wrote the failed (pending) batch and those after it, each once, and none written before it
    assert pending in rewritten and len(rewritten) == len(set(rewritten)) and not set(rewritten) & set(written)
    assert {record.step for record in lk.journal.records(run_id) if record.id in rewritten} == {"user_customer"}

    record = lk.record(run_id)
    assert record.state == "succeeded" and record.validation and record.validation.success
    for step, planted in seeded["planted"].items():
        assert {k: v for k, v in record.counts()[step].items() if v} == planted
    after = snapshot(db)
    user_links = expected_user_links(list(before["users"].values()), list(before["customers_v2"].values()))
    for oid, doc in after["users"].items():
        assert doc.get("customer_v2_id") == user_links.get(oid, before["users"][oid].get("customer_v2_id"))
    # the two batches written before the failure were not written again; every other one by the cleared try
    assert {d["_id"]: d["applied_by"] for d in journal.find({"_id": {"$in": written}})} == first_try
    assert len(first_try) == 2 and all(APPLIED_BY.match(by) for by in first_try.values())
    assert {by["step"] for by in journaled_writers(lk, run_id).values()} == set(REGISTRY)
    assert journal.count_documents({"run_id": run_id, "state": {"$ne": "applied"}}) == 0
