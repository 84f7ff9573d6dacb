"""Issue 3 acceptance: `make airflow` comes up healthy and runs a REST-triggered migration.

Bounded: it starts the script in a session of its own, on free ports, with its own
state directory, and ends every process of that session, whatever happens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from linkage.server import free_port

from conftest import ROOT

pytestmark = pytest.mark.airflow


def session_processes(sid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after ")": state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.timeout(420)
def test_local_airflow_is_healthy_within_a_minute_and_a_rest_triggered_run_succeeds(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "AIRFLOW_PORT": str(port), "MONGO_PORT": str(free_port()), "DEMO_CUSTOMERS": "500",
           "LINKAGE_VAR": str(tmp_path), "AIRFLOW_HOME": str(tmp_path / "airflow"), "BIN": str(ROOT / ".venv/bin")}
    env.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
    started = time.monotonic()
    script = subprocess.Popen(["bash", "scripts/airflow.sh"], cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = ""
        while "Airflow is up" not in banner:
            line = script.stdout.readline()
            assert line or script.poll() is None, f"airflow.sh exited: {banner}"
            banner += line
            assert time.monotonic() - started < 90, banner
        assert time.monotonic() - started < 60, f"healthy only after {time.monotonic() - started:.0f}s"

        trigger = subprocess.run(["bash", "scripts/trigger.sh", "linkage_migration", '{"partitions": 2}'], cwd=ROOT,
                                 env={**env, "AIRFLOW_API": f"http://localhost:{port}", "TIMEOUT_POLLS": "80"},
                                 capture_output=True, text=True, timeout=300)
        assert trigger.returncode == 0, trigger.stdout + trigger.stderr
        assert ": success" in trigger.stdout
    finally:
        script.send_signal(signal.SIGTERM)
        try:
            script.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(1)
        survivors = session_processes(script.pid)
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
    assert script.returncode is not None, "airflow.sh did not stop on SIGTERM"
    assert survivors == [], f"{len(survivors)} processes outlived airflow.sh"
