"""Issue 6: faults injected for real. SIGKILL anywhere, losing the database, live app traffic, fuzzed data.

Every test is seeded, bounded in time, and stops what it starts.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pymongo import MongoClient
from pymongo.database import Database

from linkage.core.app_schema import APP_COLLECTIONS
from linkage.core.models import RunKind, RunState
from linkage.core.settings import Settings
from linkage.dev.seed import seed
from linkage.dev.server import EmbeddedServer, free_port
from linkage.relations import REGISTRY
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.apply import apply_planned
from linkage.stages.backfill import run_step
from linkage.stages.executor import migrate, undo_run
from linkage.stages.indexes import create_indexes
from linkage.stages.validate import validate_run

from helpers import ROOT, by_app_id, cli_env, empty_app, last_json, run_cli, snapshot
from oracle import expected_order_links, expected_user_links

CHAOS_KILLS = int(os.environ.get("LINKAGE_CHAOS_KILLS", "20"))


def phase_of(db: Database, settings: Settings) -> str:
    """Where the newest run was, in its plan's order: the backup, indexes, each step (planning and writing its
    relation), the rest."""
    run = db[settings.collection("runs")].find_one(sort=[("created_at", -1)])
    if run is None or not run.get("backup"):
        return "backup"
    if not run.get("indexes"):
        return "indexes"
    if run.get("rollback") or run.get("state") == RunState.ROLLED_BACK:
        return "rollback"
    counted = {step for step, data in run.get("steps", {}).items() if data.get("counts")}
    journal = db[settings.collection("journal")]
    for step in ("order_delivery", "user_customer"):
        if step not in counted or journal.count_documents({"run_id": run["_id"], "step": step,
                                                           "state": {"$ne": "applied"}}):
            return step
    return "validate/finalize"


#: Where a kill lands that comes before its attempt took the run up (the process was still starting).
STARTUP = "startup"


def attempts_of(db: Database, settings: Settings) -> int:
    run = db[settings.collection("runs")].find_one(sort=[("created_at", -1)])
    return int(run.get("attempts", 0)) if run else 0


def kill_and_resume(settings: Settings, db: Database, args: list[str], kills: int, rng: random.Random,
                    window: tuple[float, float], *, resumes: bool = True) -> list[str]:
    """Run `linkage <args>` and SIGKILL it after a random delay, `kills` times, then let it finish.

    Returns the phase each kill landed in. Every attempt after the first resumes the same run; with
    `resumes` (the command starts or resumes a run), a kill that lands before its attempt did so
    (the process was still importing and connecting, which takes longer on a busy machine) is
    `STARTUP`, not the phase the previous attempt left.
    """
    env = cli_env(settings)
    landed: list[str] = []
    while True:
        proc = subprocess.Popen([sys.executable, "-m", "linkage.cli.main", *args], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if len(landed) == kills:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()[-500:]
            return landed
        before = attempts_of(db, settings)
        time.sleep(rng.uniform(*window))
        if proc.poll() is not None:  # finished before its kill: the run is complete
            assert proc.returncode == 0, proc.stderr.read().decode()[-500:]
            return landed
        phase = phase_of(db, settings)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        landed.append(phase if not resumes or attempts_of(db, settings) > before else STARTUP)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_anywhere_then_resume_ends_like_an_uninterrupted_run(
        settings: Settings, client: MongoClient, db: Database) -> None:
    seed(db, customers=500, seed_value=17)
    reference = client[f"{db.name}_ref"]
    seed(reference, customers=500, seed_value=17)
    before = by_app_id(db)
    rng = random.Random(20261126)
    try:
        ref = migrate(Linkage(settings.model_copy(update={"db": reference.name}), client),
                               MigrationParams(batch_size=25, min_order_coverage=0, min_user_coverage=0), "reference")
        assert ref.state == "succeeded"

        command = ["migrate", "--batch-size", "25", "--quiet", "--min-order-coverage", "0", "--min-user-coverage", "0"]
        landed = kill_and_resume(settings, db, command, CHAOS_KILLS, rng, (0.5, 1.6))
        runs = list(db[settings.collection("runs")].find())
        assert len(runs) == 1, "every killed attempt must be resumed, never restarted"
        run = runs[0]
        assert run["state"] == "succeeded" and run["attempts"] == len([p for p in landed if p != STARTUP]) + 1
        assert {step: data["counts"] for step, data in run["steps"].items()} == ref.steps
        assert by_app_id(db) == by_app_id(reference)
        assert db[settings.collection("journal")].count_documents({"state": "pending"}) == 0
        assert len(landed) == CHAOS_KILLS, landed
        # where kills land depends on the machine's speed; require a spread, including a backfill
        assert len(set(landed)) >= 2 and {"order_delivery", "user_customer"} & set(landed), landed

        undo = kill_and_resume(settings, db, ["rollback", "--run-id", run["_id"]], 3, rng, (0.5, 1.2), resumes=False)
        assert by_app_id(db) == before
        assert db[settings.collection("runs")].find_one({"_id": run["_id"]})["state"] == "rolled_back", undo
    finally:
        client.drop_database(reference.name)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_losing_the_database_mid_backfill_fails_clearly_and_resumes_after_restart(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "db"
    server = EmbeddedServer(port, data).start()
    client: MongoClient = MongoClient(server.uri)
    planted = seed(client.app, customers=800, seed_value=3)["planted"]
    env = cli_env(Settings(mongo_uri=server.uri, db="app", home=tmp_path / "linkage"),
                  LINKAGE_SERVER_TIMEOUT_MS="1500", LINKAGE_RETRY_SECONDS="2")  # gone, not an election
    proc = subprocess.Popen([sys.executable, "-m", "linkage.cli.main", "migrate", "--batch-size", "20", "--quiet"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while client.app.linkage_journal.count_documents({"step": "order_delivery"}) < 3:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        client.close()
        server.process.kill()  # the database dies; a graceful stop keeps serving open connections a while
        server.process.wait()
        started = time.monotonic()
        code = proc.wait(timeout=120)
        assert code != 0 and time.monotonic() - started < 90
        reason = proc.stderr.read().strip().splitlines()[-1]
        assert "linkage migrate:" in reason and ("database error" in reason or "cannot reach" in reason), reason

        server = EmbeddedServer(port, data).start()
        resumed = subprocess.run([sys.executable, "-m", "linkage.cli.main", "migrate", "--json", "--quiet"], env=env,
                                 cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert resumed.returncode == 0, resumed.stderr
        report = last_json(resumed.stdout)
        for step, counts in planted.items():
            assert {k: v for k, v in report["steps"][step].items() if v} == counts
        client = MongoClient(server.uri)
        assert client.app.linkage_runs.count_documents({}) == 1
        assert client.app.linkage_lock.count_documents({}) == 0
    finally:
        proc.kill()
        client.close()
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_live_app_traffic_survives_a_migration_and_its_rollback(
        settings: Settings, lk: Linkage, db: Database) -> None:
    seed(db, customers=600, seed_value=9)
    before = snapshot(db)
    rng = random.Random(7)
    written: dict[tuple[str, Any], dict[str, Any]] = {}
    deleted: set[tuple[str, Any]] = set()
    inserted: list[tuple[str, str]] = []
    deliveries: list[int] = []
    stop = threading.Event()

    def app() -> None:
        client = MongoClient(settings.mongo_uri)
        app_db, n = client[settings.db], 0
        ids = {name: list(before[name]) for name in APP_COLLECTIONS}
        while not stop.is_set():
            n += 1
            name = rng.choice(APP_COLLECTIONS)
            oid = rng.choice(ids[name])
            if (name, oid) in deleted:
                continue
            if n % 17 == 0 and name in ("orders", "delivery_statuses"):
                app_db[name].delete_one({"_id": oid})
                deleted.add((name, oid))
            elif n % 5 == 0:
                new_id = f"app-{name}-{n}"
                app_db[name].insert_one({"id": new_id, "note": "created by the app"})
                inserted.append((name, new_id))
            elif n % 7 == 0:  # a delivered order and its delivery status, created mid-run
                app_db.orders.insert_one({"id": f"app-o-{n}", "customer_id": f"app-c-{n}",
                                          "delivery_date": "2026-06-01", "status": "delivered"})
                app_db.delivery_statuses.insert_one({"id": f"app-d-{n}", "customer_id": f"app-c-{n}",
                                                     "delivery_date": "2026-06-01"})
                deliveries.append(n)
            else:
                value = {"app_note": f"edit {n}"}
                app_db[name].update_one({"_id": oid}, {"$set": value})
                written[(name, oid)] = value
            time.sleep(0.005)
        client.close()

    writer = threading.Thread(target=app)
    writer.start()
    try:
        result = migrate(lk, MigrationParams(batch_size=50, rollback_on_failure=False), "test")
        undo_run(lk, result.run_id)
    finally:
        stop.set()
        writer.join()

    after = snapshot(db)
    assert len(written) > 50 and deleted and inserted
    for (name, oid), value in written.items():  # no app write lost or overwritten
        if (name, oid) not in deleted:
            assert after[name][oid]["app_note"] == value["app_note"]
    for name, oid in deleted:
        assert oid not in after[name]  # rollback never resurrects
    for name, app_id in inserted:
        assert db[name].count_documents({"id": app_id}) == 1
    link = {"delivery_statuses": "order_id", "users": "customer_v2_id", "customers_v2": "user_id"}
    for name, field in link.items():  # the run's own writes are undone everywhere
        for oid, doc in after[name].items():
            if oid in before[name]:
                assert doc.get(field) == before[name][oid].get(field), (name, oid)

    # the app's deletes left dangling order_ids the run did not cause: drift, reported; the run is kept
    reconciled = migrate(lk, MigrationParams(steps=["order_delivery"], min_order_coverage=0,
                                                      min_user_coverage=0), "test", kind=RunKind.RECONCILE)
    assert reconciled.state == "succeeded" and deliveries
    assert reconciled.validation and reconciled.validation.success
    assert reconciled.drift and reconciled.drift.by_expectation["order_refs_dangling"] > 0
    # the drift pages once: the migration's alert, or tonight's if the app's deletes came after its validation
    paged = [a["run_id"] for a in lk.alerts.coll.find({"event": "drift_found"})]
    assert paged and (reconciled.run_id in paged) == bool(lk.record(reconciled.run_id).paging.page)
    for n in deliveries:  # what the app created meanwhile is linked by the nightly job
        assert db.delivery_statuses.find_one({"id": f"app-d-{n}"})["order_id"] == f"app-o-{n}"


@pytest.mark.slow
def test_two_migrations_started_together_exactly_one_proceeds(settings: Settings, db: Database, seeded: dict) -> None:
    env = cli_env(settings)
    procs = [subprocess.Popen([sys.executable, "-m", "linkage.cli.main", "migrate", "--new", "--quiet", "--json"],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert "holds the lock" in loser or "took the lock at the same moment" in loser
    assert db[settings.collection("runs")].count_documents({"state": "succeeded"}) == 1


INT64 = st.integers(-2**63, 2**63 - 1)
values = st.one_of(st.none(), st.booleans(), INT64, st.text(max_size=12),
                   st.sampled_from(["c1", "c2", "2026-03-01", "2026-03-01T23:00:00Z", "9876543210", "+91 98765 43210",
                                    "a@b.co", "A@B.CO ", "cancelled", "customer", "o1", ""]),
                   st.lists(st.sampled_from(["c1", "o1", 1]), max_size=2), st.fixed_dictionaries({"x": INT64}))
field_doc = lambda keys: st.fixed_dictionaries({}, optional={k: values for k in keys})  # noqa: E731


@hsettings(max_examples=int(os.environ.get("LINKAGE_FUZZ_EXAMPLES", "40")), deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(orders=st.lists(field_doc(["id", "customer_id", "delivery_date", "status"]), max_size=8),
       deliveries=st.lists(field_doc(["id", "customer_id", "delivery_date", "order_id"]), max_size=8),
       customers=st.lists(field_doc(["id", "phone", "email", "user_id"]), max_size=6),
       users=st.lists(field_doc(["id", "role", "phone", "email", "customer_v2_id"]), max_size=6))
@pytest.mark.slow
def test_fuzzed_documents_never_crash_and_get_only_justified_links(
        client: MongoClient, tmp_path_factory: pytest.TempPathFactory, wire_server: EmbeddedServer,
        orders: list, deliveries: list, customers: list, users: list) -> None:
    name = f"fuzz_{random.randrange(10**9)}"
    db = client[name]
    try:
        for coll, docs in (("orders", orders), ("delivery_statuses", deliveries), ("customers_v2", customers),
                           ("users", users)):
            if docs:
                db[coll].insert_many([dict(d) for d in docs])
        empty_app(db)  # a fuzzed collection may hold nothing; the database is still the app's
        before = snapshot(db)
        lk = Linkage(Settings(mongo_uri=wire_server.uri, db=name, home=tmp_path_factory.mktemp("f")), client)
        run_id, _ = start_run(lk, MigrationParams(batch_size=3, min_order_coverage=0, min_user_coverage=0,
                                                  allow_empty=True), "fuzz", new=True)
        with lk.hold(run_id):
            create_indexes(lk, run_id)
            counts = {step: run_step(lk, run_id, step) for step in REGISTRY}
            apply_planned(lk, run_id)  # the passes plan; the apply stage writes
        assert sum(counts["order_delivery"].values()) == len(deliveries), "every delivery is categorised"
        outcome = validate_run(lk, run_id)  # whatever the data held is drift; what the run wrote is sound
        assert outcome.success, [(e.name, e.examples) for e in outcome.failed]
        after = snapshot(db)
        order_links = expected_order_links(list(before["delivery_statuses"].values()), list(before["orders"].values()))
        for oid, doc in after["delivery_statuses"].items():
            assert doc.get("order_id") == order_links.get(oid, before["delivery_statuses"][oid].get("order_id"))
        user_links = expected_user_links(list(before["users"].values()), list(before["customers_v2"].values()))
        for oid, doc in after["users"].items():
            assert doc.get("customer_v2_id") == user_links.get(oid, before["users"][oid].get("customer_v2_id"))
    finally:
        client.drop_database(name)


PASSWORD = "Pa55-W0rd-XYZ"


@pytest.mark.slow
@pytest.mark.airflow
def test_full_runs_with_a_password_in_the_uri_leak_no_password_phone_or_email(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A DAG run and a CLI run whose MongoDB URI carries a password (through a proxy that
    accepts PLAIN authentication, since the embedded server has none)."""
    import sqlite3

    from auth_proxy import PlainAuthProxy

    raw = {PASSWORD}
    for name in ("users", "customers_v2"):
        for doc in db[name].find({}, {"phone": 1, "email": 1}):
            raw |= {str(v).strip() for v in (doc.get("phone"), doc.get("email")) if v and len(str(v).strip()) >= 8}
    target = int(airflow_env.mongo_uri.rstrip("/").rsplit(":", 1)[1])
    proxy = PlainAuthProxy(free_port(), target).start()
    try:
        auth = "authMechanism=PLAIN&authSource=%24external&serverSelectionTimeoutMS=5000"
        monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT",
                           f"mongo://linkage:{PASSWORD}@127.0.0.1:{proxy.listen_port}/{airflow_env.db}?{auth}")
        run = dagbag.get_dag("linkage_migration").test(run_conf={"min_user_coverage": 0.999})  # fails: alerts too
        cli_uri = f"mongodb://linkage:{PASSWORD}@127.0.0.1:{proxy.listen_port}/?{auth.replace('%24', '$')}"
        cli = run_cli(airflow_env, "migrate", "--new", "--json", env={"LINKAGE_MONGO_URI": cli_uri})
    finally:
        proxy.stop()
    assert "linkage" in proxy.authenticated and cli.returncode == 0, cli.stderr
    out, err = capfd.readouterr()
    out += cli.stdout + cli.stderr
    stored = [json_dump(list(db[airflow_env.collection(c)].find())) for c in ("runs", "review", "journal", "alerts")]
    with sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db") as meta:
        xcoms = [str(row[0]) for row in meta.execute("select value from xcom where run_id = ?", (run.run_id,))]
    assert xcoms and len(out + err) > 10_000
    haystack = "\n".join([out, err, *stored, *xcoms])
    assert sorted(v for v in raw if v in haystack) == []


def json_dump(docs: list) -> str:
    import json
    return json.dumps(docs, default=str)


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.timeout(400)
def test_a_dag_run_started_with_a_cli_run_waits_for_its_lock(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, lk: Linkage,
        capfd: pytest.CaptureFixture[str]) -> None:
    env = cli_env(airflow_env)
    cli = subprocess.Popen([sys.executable, "-m", "linkage.cli.main", "migrate", "--quiet", "--batch-size", "20"],
                           env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while lk.lock.find_one() is None:
        assert time.monotonic() < deadline and cli.poll() is None
        time.sleep(0.05)
    cli_run = lk.lock.find_one()["run_id"]

    dag_run = dagbag.get_dag("linkage_migration").test()
    assert cli.wait(timeout=120) == 0, cli.stderr.read()
    out, err = capfd.readouterr()
    assert f"another migration holds the lock: run {cli_run}" in out + err  # the DAG's first attempt
    record = lk.runs.get(f"linkage_migration:{dag_run.run_id}")
    assert lk.runs.get(cli_run)["state"] == "succeeded"
    assert str(dag_run.state) == "success" and record["state"] == "succeeded"
    assert all(step["counts"]["linked"] == 0 for step in record["steps"].values()), \
        "the DAG ran after the CLI, not beside it"
