"""`make airflow` (scripts/airflow.sh) for tests: started on free ports in a session of its own, driven
through Airflow's REST API as a person's scripts would, and stopped with every process it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from linkage.dev.server import free_port

from helpers import ROOT

FINAL = {"success", "failed"}


def session_processes(sid: int) -> list[int]:
    """Every live process of a session (what a script started, even if it left the process group)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after ")": state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def listening(pids: list[int]) -> set[tuple[str, int]]:
    """The (address, port) of every TCP socket these processes listen on, from /proc/net/tcp and tcp6."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes |= {link[len("socket:["):-1] for link in links if link.startswith("socket:[")}
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.add((_address(address, width), int(port, 16)))
    return found


def _address(hexed: str, width: int) -> str:
    """/proc/net's address (little-endian words) as text: `127.0.0.1`, `0.0.0.0`, `::`, `::1`."""
    import ipaddress

    raw = b"".join(bytes.fromhex(hexed[i:i + 8])[::-1] for i in range(0, width, 8))
    return str(ipaddress.ip_address(raw))


@dataclass
class LocalAirflow:
    """scripts/airflow.sh running on free ports with its state under `home`."""

    home: Path
    customers: int = 500
    port: int = field(default_factory=free_port)
    mongo_port: int = field(default_factory=free_port)
    banner: str = ""
    started_in: float = 0.0
    survivors: list[int] = field(default_factory=list)
    #: What the script printed after the banner, up to its end (what Ctrl-C showed).
    said: str = ""
    process: subprocess.Popen[str] | None = None
    _token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "AIRFLOW_PORT": str(self.port), "MONGO_PORT": str(self.mongo_port),
               "DEMO_CUSTOMERS": str(self.customers), "LINKAGE_VAR": str(self.home),
               "AIRFLOW_HOME": str(self.home / "airflow"), "BIN": str(ROOT / ".venv/bin")}
        for inherited in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW_CONN_MONGO_DEFAULT", "LINKAGE_HOME"):
            env.pop(inherited, None)
        return env

    @property
    def password(self) -> str:
        return self.password_of("admin")

    def password_of(self, user: str) -> str:
        """A user's generated password (scripts/airflow.sh's users: `admin`, `reviewer` who approves, `viewer`)."""
        generated = self.home / "airflow" / "simple_auth_manager_passwords.json.generated"
        return str(json.loads(generated.read_text())[user])

    def start(self, within: float = 120) -> LocalAirflow:
        started = time.monotonic()
        self.process = subprocess.Popen(["bash", "scripts/airflow.sh"], cwd=ROOT, env=self.env, start_new_session=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        while "Ctrl-C stops" not in self.banner:  # the whole banner (it is printed at once)
            line = self.process.stdout.readline()
            assert line or self.process.poll() is None, f"airflow.sh exited: {self.banner}"
            self.banner += line
            assert time.monotonic() - started < within, self.banner
        self.started_in = time.monotonic() - started
        return self

    def stop(self, sig: signal.Signals = signal.SIGINT) -> None:
        """Ctrl-C, as a terminal sends it (SIGINT to the script's process group), from whatever disposition this
        harness has (issue 30: started with SIGINT ignored, the script once ignored it), or another signal to the
        script; then whatever outlived it is recorded and killed, and what it printed until it ended is kept
        (`said`)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            if sig == signal.SIGINT:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(1)
        self.survivors = session_processes(self.process.pid)
        for pid in self.survivors:
            os.kill(pid, signal.SIGKILL)
        if self.process.stdout is not None and self.process.returncode is not None:
            self.said = self.process.stdout.read()

    def token(self) -> str:
        if self._token is None:
            answer = httpx.post(f"{self.base}/auth/token", json={"username": "admin", "password": self.password})
            answer.raise_for_status()
            self._token = str(answer.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = httpx.request(method, f"{self.base}/api/v2/{path}", timeout=30,
                               headers={"Authorization": f"Bearer {self.token()}"}, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        self.api("PATCH", f"dags/{dag_id}", json={"is_paused": False})
        return str(self.api("POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})["dag_run_id"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run: dict[str, Any] = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINAL or time.monotonic() > deadline:
                return run
            time.sleep(2)

    def run(self, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        return self.wait(dag_id, self.trigger(dag_id, conf))


@contextmanager
def running(home: Path, customers: int = 400) -> Iterator[LocalAirflow]:
    """`make airflow` started in `home` for a module's tests, stopped with Ctrl-C at the end, leaving no process."""
    local = LocalAirflow(home, customers=customers)
    try:
        yield local.start()
    finally:
        local.stop()
    assert local.survivors == [], f"{len(local.survivors)} processes outlived airflow.sh"
