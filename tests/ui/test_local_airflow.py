"""`make airflow` comes up healthy, runs a REST-triggered migration, says what the CLI must export to work on
its database and home, has a read-only user, and stops everything it started on Ctrl-C, saying so.

Bounded: it starts the script in a session of its own, on free ports, with its own
state directory, and ends every process of that session, whatever happens.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from helpers import ROOT, last_json
from local_airflow import LocalAirflow, listening, session_processes

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.mark.timeout(420)
def test_local_airflow_is_healthy_within_two_minutes_and_a_rest_triggered_run_succeeds(tmp_path: Path) -> None:
    airflow = LocalAirflow(tmp_path)
    try:
        airflow.start(within=120)
        assert airflow.process is not None
        # every listener on 127.0.0.1: the api-server and the database, and no log servers (8793, 8794)
        assert listening(session_processes(airflow.process.pid)) == {("127.0.0.1", airflow.port),
                                                                     ("127.0.0.1", airflow.mongo_port)}
        run = airflow.run("linkage_migration", {"partitions": 2})
        assert run["state"] == "success", run
        assert run["note"].startswith("linked order_delivery ")
        # the CLI with what the banner says to export works on this Airflow's database and home (issue 28)
        exported = next(line for line in airflow.banner.splitlines() if line.strip().startswith("export "))
        env = dict(pair.split("=", 1) for pair in exported.split()[1:])
        assert env == {"LINKAGE_MONGO_URI": airflow.mongo_uri, "LINKAGE_DB": "app", "LINKAGE_HOME": str(tmp_path)}
        status = subprocess.run([str(ROOT / ".venv/bin/linkage"), "status", "--json"], capture_output=True,
                                text=True, timeout=120, env={**airflow.env, **env})
        assert status.returncode == 0, status.stderr
        shown = last_json(status.stdout)
        assert shown["backups"]["path"] == str(tmp_path / "backups")
        assert shown["recent_runs"][0]["_id"].startswith("linkage_migration:")
        # a read-only user reads the queue but may not decide: every way to decide is 403, nothing recorded
        signed = httpx.post(f"{airflow.base}/auth/token",
                            json={"username": "viewer", "password": airflow.password_of("viewer")})
        assert signed.status_code == 201, signed.text
        viewer = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        queue = httpx.get(f"{airflow.base}/linkage/api/review", headers=viewer, timeout=60)
        assert queue.status_code == 200 and queue.json()["items"]
        item = queue.json()["items"][0]["item_id"]
        export = httpx.get(f"{airflow.base}/linkage/review.csv", headers=viewer, timeout=60).text
        tries = [httpx.post(f"{airflow.base}/linkage/api/decisions", headers=viewer, timeout=60,
                            json={"via": via, "decisions": [{"item_id": item, "decision": "none"}]})
                 for via in ("view", "api")]
        tries.append(httpx.post(f"{airflow.base}/linkage/api/decisions.csv", content=export.encode(), timeout=60,
                                headers={**viewer, "Content-Type": "text/csv"}))
        assert [t.status_code for t in tries] == [403, 403, 403], [t.text for t in tries]
        with MongoClient(airflow.mongo_uri) as client:
            assert client.app.linkage_decisions.count_documents({}) == 0
    finally:
        airflow.stop(signal.SIGINT)  # Ctrl-C in its terminal
    assert airflow.process is not None and airflow.process.returncode is not None, "airflow.sh did not stop"
    assert airflow.survivors == [], f"{len(airflow.survivors)} processes outlived airflow.sh"
    said = [line for line in airflow.said.splitlines() if line.strip()]
    components = ("Airflow (api-server, scheduler, dag-processor, triggerer) and the embedded MongoDB on "
                  f":{airflow.mongo_port}")
    assert said[-2:] == [f"airflow: stopping {components}...",
                         f"airflow: stopped {components} (5 processes and theirs); the data stays in {tmp_path}"], said


@pytest.mark.timeout(60)
@pytest.mark.parametrize("taken", ["mongo_port", "port"])
def test_make_airflow_refuses_a_port_held_by_a_server_it_did_not_start(tmp_path: Path, taken: str) -> None:
    """Issue 23: a leftover server on :27017 was silently reused (and seeding skipped)."""
    airflow = LocalAirflow(tmp_path)
    with socket.socket() as held:
        held.bind(("127.0.0.1", getattr(airflow, taken)))
        held.listen()
        done = subprocess.run(["bash", "scripts/airflow.sh"], cwd=ROOT, env=airflow.env, capture_output=True,
                              text=True, timeout=45, start_new_session=True)
    name = {"mongo_port": "MONGO_PORT", "port": "AIRFLOW_PORT"}[taken]
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [f"airflow: port {getattr(airflow, taken)} ({name}) is in use (another make "
                                        "airflow, make demo's database, make cluster?); stop it or set "
                                        f"{name}=<free port>"]
    assert not (tmp_path / "airflow").exists() and not (tmp_path / "airflow-db").exists(), "it started something"
