"""Issue 15 acceptance: the production topology (`make cluster`) proven on one machine.

One native cluster for the module (PostgreSQL, Redis, the embedded MongoDB, Airflow's
api-server, scheduler, dag-processor, triggerer and two Celery workers), started by
scripts/cluster.sh in a session of its own, on free ports, in a temporary directory.
Every run is triggered through the REST API and checked against the independent oracle
and the run record. The last test stops the cluster and checks nothing outlived it; the
fixture kills every survivor of the session whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from linkage.dev.seed import seed
from linkage.dev.server import free_port

from helpers import ROOT, raw_bytes, snapshot
from local_airflow import listening, session_processes
from oracle import expected_order_links, expected_user_links

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
DAG = "linkage_migration"
WORKERS = {"worker-1", "worker-2"}
AIRFLOW_PROCESSES = ["apiserver", "scheduler", "dag-processor", "triggerer", "worker-1", "worker-2"]
#: A terminal starts a foreground job with SIGINT at its default, whatever this harness has: pytest started as a
#: background job of a script (`make test > log &`, a CI step) ignores SIGINT, an ignored signal stays ignored
#: across exec, and make and cat would then outlive the Ctrl-C this module sends (issue 30).
AS_A_TERMINAL_STARTS_IT = [sys.executable, "-c", "import os, signal, sys\n"
                           "for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ):\n"
                           "    signal.signal(s, signal.SIG_DFL)\n"
                           "os.execvp(sys.argv[1], sys.argv[1:])"]


def command_line(pid: int) -> str:
    """A process's command line, as `ps` shows it (empty once it is gone)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return ""


@dataclass
class Cluster:
    home: Path
    api: str
    mongo_uri: str
    script: subprocess.Popen[str]
    banner: str
    up_seconds: float
    ports: dict[str, str] = field(default_factory=dict)
    token: str = ""
    stopped: list[int] | None = None
    output: list[str] = field(default_factory=list)
    #: What was still running when a Ctrl-C did not stop the script in time (command lines).
    hung: list[str] = field(default_factory=list)

    # -- the processes ------------------------------------------------------
    def pid(self, name: str) -> int:
        return int((self.home / "run" / f"{name}.pid").read_text())

    def tree(self, pid: int) -> list[int]:
        children = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(stat.parent.name))
        found, todo = [], [pid]
        while todo:
            current = todo.pop()
            found.append(current)
            todo.extend(children.get(current, []))
        return found

    def stop(self) -> list[int]:
        """Ctrl-C as a terminal sends it: SIGINT to the foreground process group, `make cluster | cat` (make, the
        script and cat, whose end closes the pipe the script writes to); then kill whatever of its session
        survived."""
        if self.stopped is not None:
            return self.stopped
        if self.script.poll() is None:
            os.killpg(self.script.pid, signal.SIGINT)
            try:
                self.script.wait(timeout=200)  # its stop takes about a minute; more on a loaded machine
            except subprocess.TimeoutExpired:  # what was still running, for the failure to name
                self.hung = [command_line(pid) for pid in session_processes(self.script.pid)]
        time.sleep(1)
        self.stopped = session_processes(self.script.pid)
        for pid in self.stopped:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return self.stopped

    # -- the REST API -------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def login(self) -> None:
        password = (self.home / "secrets" / "admin_password").read_text()
        self.token = self.request("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]

    def trigger(self, conf: dict[str, Any], dag: str = DAG) -> str:
        self.request("PATCH", f"/api/v2/dags/{dag}", {"is_paused": False})
        return self.request("POST", f"/api/v2/dags/{dag}/dagRuns", {"logical_date": None, "conf": conf})["dag_run_id"]

    def state(self, run_id: str, dag: str = DAG) -> str:
        return self.request("GET", f"/api/v2/dags/{dag}/dagRuns/{run_id}")["state"]

    def wait(self, run_id: str, timeout: float, dag: str = DAG) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(run_id, dag)
            if state in ("success", "failed"):
                return state
            time.sleep(2)
        return self.state(run_id, dag)

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances?limit=500")["task_instances"]

    def tries(self, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
                            )["task_instances"]


@pytest.fixture(scope="module")
def cluster() -> Any:
    # PostgreSQL runs as its own user when the tests run as root: the directory must be passable.
    var = Path(tempfile.mkdtemp(prefix="linkage-cluster-"))
    var.chmod(0o711)
    ports = {name: str(free_port()) for name in
             ("AIRFLOW_PORT", "MONGO_PORT", "PG_PORT", "REDIS_PORT", "SMTP_PORT", "SCHEDULER_HEALTH_PORT")}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LINKAGE_"))},
           **ports, "LINKAGE_VAR": str(var), "DEMO_CUSTOMERS": "0", "LINKAGE_NO_DOTENV": "1",
           "BIN": str(ROOT / ".venv/bin")}
    started = time.monotonic()
    # through a pipe, as `make cluster 2>&1 | tee cluster.log` runs it (issue 23: Ctrl-C then stopped nothing)
    script = subprocess.Popen([*AS_A_TERMINAL_STARTS_IT, "bash", "-c", "make --no-print-directory cluster 2>&1 | cat"],
                              cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    cluster = Cluster(var / "cluster", f"http://127.0.0.1:{ports['AIRFLOW_PORT']}",
                      f"mongodb://127.0.0.1:{ports['MONGO_PORT']}/", script, "", 0.0, ports=ports, output=lines)
    try:
        while not any("Ctrl-C stops everything" in line for line in lines):
            line = script.stdout.readline()
            assert line or script.poll() is None, "cluster.sh exited:\n" + "".join(lines)
            lines.append(line)
            assert time.monotonic() - started < 300, "".join(lines)
        cluster.banner, cluster.up_seconds = "".join(lines), time.monotonic() - started
        cluster.login()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(var, ignore_errors=True)


@pytest.fixture
def app_db(cluster: Cluster) -> Any:
    client: MongoClient = MongoClient(cluster.mongo_uri, serverSelectionTimeoutMS=5000)
    yield client["app"]
    client.close()


def fresh(db: Database, customers: int, seed_value: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A database with nothing but freshly seeded app data: (what seed planted, snapshot)."""
    db.client.drop_database(db.name)
    planted = seed(db, customers=customers, seed_value=seed_value)
    return planted, snapshot(db)


def assert_links_are_the_oracles(db: Database, before: dict[str, Any]) -> None:
    """Every document holds exactly the link SPEC §3 gives it (the independent oracle), nothing else changed."""
    order_links = expected_order_links(list(before["delivery_statuses"].values()), list(before["orders"].values()))
    user_links = expected_user_links(list(before["users"].values()), list(before["customers_v2"].values()))
    after = snapshot(db)
    assert {name: set(docs) for name, docs in after.items()} == {name: set(docs) for name, docs in before.items()}
    for oid, doc in after["delivery_statuses"].items():
        assert doc.get("order_id") == order_links.get(oid, before["delivery_statuses"][oid].get("order_id")), oid
    for oid, doc in after["users"].items():
        assert doc.get("customer_v2_id") == user_links.get(oid, before["users"][oid].get("customer_v2_id")), oid
    users_by_id = {doc.get("id"): doc for doc in after["users"].values()}
    for oid, doc in after["customers_v2"].items():
        if doc.get("user_id") != before["customers_v2"][oid].get("user_id"):  # written by the run
            assert before["customers_v2"][oid].get("user_id") in (None, "")
            assert users_by_id[doc["user_id"]].get("customer_v2_id") == doc["id"], oid


def assert_run_record_is_complete(cluster: Cluster, db: Database, run_id: str, planted: dict[str, Any],
                                  partitions: int, before: dict[str, Any]) -> dict[str, Any]:
    linkage_run = f"{DAG}:{run_id}"
    records = list(db.linkage_runs.find({"triggered_by": f"airflow:{DAG}/{run_id}"}))
    assert [r["_id"] for r in records] == [linkage_run], "one run record per Airflow run"
    record = records[0]
    assert record["state"] == "succeeded" and record["params"]["partitions"] == partitions
    assert record["validation"]["success"] is True
    for step, counts in planted["planted"].items():
        assert {k: v for k, v in record["steps"][step]["counts"].items() if v} == counts, step
    assert record["preflight"]["counts"]["users"] == len(before["users"])
    # backups and Data Docs landed on the storage every worker shares
    backup = Path(record["backup"]["path"])
    assert record["backup"]["verified"] and (backup / "manifest.json").is_file()
    assert backup.is_relative_to(cluster.home / "backups")
    assert (cluster.home / "gx_docs" / record["validation"]["data_docs"]).is_file()
    for step in record["steps"].values():
        for phase, stored in step["phases"].items():
            assert len(stored["partitions"]) == partitions, phase
    journal = list(db.linkage_journal.find({"run_id": linkage_run}, {"writes": 0}))
    assert journal and all(batch["state"] == "applied" for batch in journal)
    seqs = Counter((b["step"], b["phase"], b["partition"], b["seq"]) for b in journal)
    assert max(seqs.values()) == 1, "a batch journaled twice"
    by_partition: dict[tuple[str, str, int], list[int]] = {}
    for step, phase, part, seq in seqs:
        by_partition.setdefault((step, phase, part), []).append(seq)
    for key, numbers in by_partition.items():
        assert sorted(numbers) == list(range(min(numbers), min(numbers) + len(numbers))), f"a batch lost in {key}"
    assert db.linkage_lock.find_one() is None, "the lease outlived the run"
    return record


def load_cluster_env() -> Any:
    """scripts/cluster_env.py, the one translation of deploy/airflow.env that make cluster applies."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cluster_env", ROOT / "scripts" / "cluster_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mapped(tis: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    phases: dict[str, list[dict[str, Any]]] = {}
    for ti in tis:
        if ti["map_index"] >= 0:
            phases.setdefault(ti["task_id"], []).append(ti)
    return phases


@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", ["change-me", ""])
def test_make_cluster_refuses_a_change_me_or_empty_password_before_starting_anything(tmp_path: Path,
                                                                                       value: str) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LINKAGE_"))},
           "LINKAGE_VAR": str(tmp_path), "LINKAGE_NO_DOTENV": "1", "POSTGRES_PASSWORD": value,
           **{name: str(free_port()) for name in ("AIRFLOW_PORT", "MONGO_PORT", "PG_PORT", "REDIS_PORT", "SMTP_PORT",
                                                  "SCHEDULER_HEALTH_PORT")}}
    done = subprocess.run(["bash", "scripts/cluster.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=50,
                          start_new_session=True)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("refusing to start: POSTGRES_PASSWORD is ")
    assert not (tmp_path / "cluster" / "pg").exists() and not list((tmp_path / "cluster" / "run").glob("*.pid"))


@pytest.mark.timeout(300)
def test_cluster_comes_up_with_two_workers_and_tells_how_to_log_in(cluster: Cluster) -> None:
    assert cluster.up_seconds < 240, f"up only after {cluster.up_seconds:.0f}s"
    assert "is up in" in cluster.banner and cluster.api in cluster.banner
    assert "admin" in cluster.banner and str(cluster.home / "secrets" / "admin_password") in cluster.banner
    assert (cluster.home / "secrets" / "admin_password").read_text() not in cluster.banner
    health = cluster.request("GET", "/api/v2/monitor/health")
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    assert {health[part]["status"] for part in parts} == {"healthy"}
    assert len({cluster.pid(name) for name in AIRFLOW_PROCESSES}) == len(AIRFLOW_PROCESSES)
    # the secrets are files only their owner can read
    for secret in (cluster.home / "secrets").iterdir():
        assert secret.stat().st_mode & 0o077 == 0, secret


@pytest.mark.timeout(480)
def test_partitions_of_one_run_work_on_both_workers_and_link_like_the_oracle(cluster: Cluster,
                                                                              app_db: Database) -> None:
    planted, before = fresh(app_db, customers=600, seed_value=11)
    exact = raw_bytes(app_db)
    run_id = cluster.trigger({"partitions": 4, "batch_size": 50})
    assert cluster.wait(run_id, timeout=300) == "success", cluster.task_instances(run_id)

    tis = cluster.task_instances(run_id)
    states = Counter(ti["state"] for ti in tis)
    assert set(states) == {"success", "skipped"} and states["skipped"] == 1, [  # rollback
        (ti["task_id"], ti["map_index"], ti["state"]) for ti in tis if ti["state"] != "success"]
    phases = mapped(tis)
    assert {k: len(v) for k, v in phases.items()} == dict.fromkeys(phases, 4)  # one instance per partition
    hosts = {phase: {ti["hostname"] for ti in instances} for phase, instances in phases.items()}
    assert {host for used in hosts.values() for host in used} == WORKERS, hosts
    assert any(used == WORKERS for used in hosts.values()), f"no mapped phase ran on both workers: {hosts}"
    # separate processes on separate (Airflow) hosts, one linkage run
    both = next(instances for instances in phases.values() if {ti["hostname"] for ti in instances} == WORKERS)
    assert len({(ti["hostname"], ti["pid"]) for ti in both}) == 4

    assert_links_are_the_oracles(app_db, before)
    assert_run_record_is_complete(cluster, app_db, run_id, planted, 4, before)
    alerts = list(app_db.linkage_alerts.find({"run_id": f"{DAG}:{run_id}"}))
    assert alerts and all(a["delivered"] == ["log", "email"] and not a["undelivered"] for a in alerts), [
        (a["delivered"], a["undelivered"]) for a in alerts]
    # the links were written by the backfill groups' mapped write tasks, on both workers (the journal records
    # which task try on which worker wrote each batch)
    writers = Counter(re.sub(r"^(backfill_\w+\.write_\w+)\[\d+\] try \d+ on ([\w-]+):\d+$", r"\1 \2", b["applied_by"])
                      for b in app_db.linkage_journal.find({"run_id": f"{DAG}:{run_id}"},
                                                           {"applied_by": 1, "touched": 1}) if b["touched"])
    assert {w.split()[1] for w in writers} == WORKERS, writers
    assert {w.split()[0] for w in writers} == {"backfill_order_delivery.write_link",
                                               "backfill_user_customer.write_apply"}, writers
    # and the run rolls back to the very bytes it started from
    undo = cluster.trigger({"run_id": run_id}, dag="linkage_rollback")
    assert cluster.wait(undo, timeout=120, dag="linkage_rollback") == "success"
    assert raw_bytes(app_db) == exact


@pytest.mark.timeout(480)
def test_a_worker_killed_mid_partition_is_retried_and_the_retry_resumes_the_journal(
        cluster: Cluster, app_db: Database) -> None:
    planted, before = fresh(app_db, customers=3000, seed_value=5)
    # batches of 2: a partition plans for seconds, long enough to be caught between its third batch and its last
    run_id = cluster.trigger({"partitions": 4, "batch_size": 2})
    linkage_run = f"{DAG}:{run_id}"
    task = "backfill_order_delivery.link"

    # wait until a partition of the link phase has planned a few batches, then lose its worker (the passes
    # plan into the journal; the apply stage writes after every pass is done)
    victim = None
    deadline = time.monotonic() + 240
    while victim is None and time.monotonic() < deadline:
        applied = Counter(b["partition"] for b in app_db.linkage_journal.find(
            {"run_id": linkage_run, "step": "order_delivery", "phase": "link"}, {"partition": 1}))
        started = [p for p, n in applied.items() if n >= 3]
        if started:
            running = {ti["map_index"]: ti for ti in cluster.task_instances(run_id)
                       if ti["task_id"] == task and ti["state"] == "running" and ti["hostname"] in WORKERS}
            for partition in started:
                if partition in running:
                    victim = running[partition]
                    break
        if victim is None:
            time.sleep(0.1)
    assert victim is not None, "no link partition was caught running"
    worker = victim["hostname"]
    doomed = cluster.tree(cluster.pid(worker))
    for pid in doomed:  # the whole machine goes: celery, its pool, the task supervisor and the task
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    journaled_at_kill = app_db.linkage_journal.count_documents(
        {"run_id": linkage_run, "step": "order_delivery", "phase": "link", "partition": victim["map_index"]})
    done_at_kill = app_db.linkage_journal.find_one(
        {"run_id": linkage_run, "step": "order_delivery", "phase": "link", "partition": victim["map_index"]},
        sort=[("seq", -1)])

    assert cluster.wait(run_id, timeout=400) == "success", cluster.task_instances(run_id)

    tries = cluster.tries(run_id, task, victim["map_index"])
    assert len(tries) >= 2, tries
    first, last = tries[0], tries[-1]
    assert first["hostname"] == worker and first["state"] in ("failed", "up_for_retry"), first
    assert last["state"] == "success" and last["hostname"] in WORKERS
    # the retry went on from the journal: the batches journaled before the kill are still the
    # run's, none is journaled twice, none is pending, and the counts are exactly what seed planted
    journal = list(app_db.linkage_journal.find(
        {"run_id": linkage_run, "step": "order_delivery", "phase": "link", "partition": victim["map_index"]},
        {"writes": 0}))
    assert len(journal) > journaled_at_kill and done_at_kill["_id"] in {b["_id"] for b in journal}
    assert cluster.pid(worker) not in doomed, "the lost worker was started again"
    assert_links_are_the_oracles(app_db, before)
    assert_run_record_is_complete(cluster, app_db, run_id, planted, 4, before)


@pytest.mark.timeout(360)
def test_the_scheduler_restarted_during_a_run_and_the_run_still_completes_correctly(
        cluster: Cluster, app_db: Database) -> None:
    planted, before = fresh(app_db, customers=600, seed_value=23)
    run_id = cluster.trigger({"partitions": 4})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = {ti["task_id"]: ti["state"] for ti in cluster.task_instances(run_id)}
        if states.get("create_indexes") == "success":  # the run under way: its backfills about to start
            break
        time.sleep(0.5)
    assert states.get("create_indexes") == "success", states
    old = cluster.pid("scheduler")
    os.kill(old, signal.SIGTERM)  # a restart, as a deploy or `docker compose restart` does it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not (cluster.home / "run" / "scheduler.pid").exists()
                                           or cluster.pid("scheduler") == old):
        time.sleep(0.5)
    assert cluster.pid("scheduler") != old, "the scheduler was not started again"

    assert cluster.wait(run_id, timeout=300) == "success", cluster.task_instances(run_id)
    assert "restarted" in (cluster.home / "logs" / "scheduler.log").read_text()
    assert_links_are_the_oracles(app_db, before)
    assert_run_record_is_complete(cluster, app_db, run_id, planted, 4, before)


@pytest.mark.timeout(120)
def test_every_airflow_process_runs_with_exactly_the_shared_configuration(cluster: Cluster) -> None:
    cluster_env = load_cluster_env()
    expected = cluster_env.native_env(ROOT, cluster.home, int(cluster.api.rsplit(":", 1)[1]))
    assert not any("/opt/airflow" in v or "airflow-apiserver" in v for v in expected.values())
    for name in AIRFLOW_PROCESSES:
        # what cluster.sh exec'd the process with (its own /proc environ is overwritten by its title)
        raw = (cluster.home / "run" / f"{name}.environ").read_bytes().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        assert {k: env.get(k) for k in expected} == expected, name
        extra = {k for k in env if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))} - set(expected)
        assert extra <= cluster_env.PROCESS_KEYS, (name, extra)
        assert env["LINKAGE_HOSTNAME"] == name


@pytest.mark.timeout(60)
def test_the_cluster_and_the_compose_file_define_the_same_connections(cluster: Cluster, tmp_path: Path) -> None:
    """Both come from deploy/init_config.py; only the endpoints differ, and the credentials of the
    bundled MongoDB (compose's has users, the embedded server has no authentication)."""
    from urllib.parse import parse_qs, urlsplit

    from test_compose import config_service, example_env, run_init

    done = run_init(config_service(example_env()), tmp_path, {})
    assert done.returncode == 0, done.stderr
    compose = json.loads((tmp_path / "connections.json").read_text())
    native = json.loads((cluster.home / "secrets" / "connections.json").read_text())
    assert set(compose) == set(native) == {"mongo_default", "smtp_default"}
    c, n = urlsplit(compose["mongo_default"]), urlsplit(native["mongo_default"])
    assert (c.scheme, c.path) == (n.scheme, n.path) == ("mongo", "/app")
    assert (c.hostname, c.port, c.username) == ("mongo", 27017, "linkage")
    assert (n.hostname, n.port, n.username) == ("127.0.0.1", int(cluster.ports["MONGO_PORT"]), None)
    options = parse_qs(c.query)
    assert options.pop("authSource") == ["admin"] and options == parse_qs(n.query)
    endpoint = {"host", "port"}
    assert {k: v for k, v in compose["smtp_default"].items() if k not in endpoint} == \
           {k: v for k, v in native["smtp_default"].items() if k not in endpoint}
    assert (compose["smtp_default"]["host"], native["smtp_default"]["host"]) == ("mailpit", "127.0.0.1")


@pytest.mark.timeout(120)
def test_connection_passwords_are_encrypted_and_no_process_has_a_password_in_its_environment(cluster: Cluster) -> None:
    import psycopg2
    from cryptography.fernet import Fernet

    secrets = cluster.home / "secrets"
    cluster.request("POST", "/api/v2/connections", {"connection_id": "probe_encrypted", "conn_type": "http",
                                                    "host": "example.org", "password": "probe-secret-4711"})
    db = psycopg2.connect(host="127.0.0.1", port=int(cluster.ports["PG_PORT"]), user="airflow", dbname="airflow",
                          password=(secrets / "postgres_password").read_text())
    try:
        with db.cursor() as cursor:
            cursor.execute("SELECT password, is_encrypted FROM connection WHERE conn_id = 'probe_encrypted'")
            stored, encrypted = cursor.fetchone()
    finally:
        db.close()
    assert encrypted is True and "probe-secret-4711" not in stored
    assert Fernet((secrets / "fernet_key").read_text().encode()).decrypt(stored.encode()) == b"probe-secret-4711"
    cluster.request("DELETE", "/api/v2/connections/probe_encrypted")

    kept = [(secrets / name).read_text() for name in ("postgres_password", "redis_password", "admin_password",
                                                       "fernet_key", "jwt_secret", "api_secret_key")]
    for name in AIRFLOW_PROCESSES:
        environ = (cluster.home / "run" / f"{name}.environ").read_text(errors="replace")
        assert not [secret for secret in kept if secret in environ], f"{name} has a secret in its environment"
    logs = "".join(p.read_text(errors="replace") for p in (cluster.home / "logs").rglob("*.log"))
    assert not [secret for secret in kept if secret in logs + cluster.banner], "a secret in a log"


@pytest.mark.timeout(180)
def test_every_listener_of_the_cluster_is_on_127_0_0_1(cluster: Cluster) -> None:
    bound = listening(session_processes(cluster.script.pid))
    assert {port for _, port in bound} >= {int(port) for port in cluster.ports.values()}, bound
    assert {address for address, _ in bound} == {"127.0.0.1"}, bound


# its stop waits 200 s at most; run alone (or first in the module), the cluster's start (300 s at most) is in it too
@pytest.mark.timeout(540)
def test_ctrl_c_of_make_cluster_through_a_pipe_leaves_no_process_behind(cluster: Cluster) -> None:
    """`make cluster | cat` and Ctrl-C: cat ends with the rest of the foreground group, and the script's
    "stopping..." goes to a closed pipe; it must stop everything all the same."""
    before = len(session_processes(cluster.script.pid))
    survivors = cluster.stop()
    assert before >= 20 and cluster.script.returncode is not None, \
        f"make cluster | cat did not stop on SIGINT in 200 s; still running: {cluster.hung}"
    assert survivors == [], f"{len(survivors)} of {before} processes outlived cluster.sh"
