"""Fixtures: one real wire-protocol server per test session, a fresh database per test."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from linkage.core.settings import Settings
from linkage.dev import ferretdb
from linkage.dev.seed import seed
from linkage.dev.server import EmbeddedServer, free_port
from linkage.run.session import Linkage

from helpers import ROOT, app_quiet

_names = itertools.count()

# Airflow reads its configuration at import: point it at a private home, this
# project's DAGs and plugins, before any test imports it.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="linkage-airflow-"))
os.environ.update({"AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                   "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                   "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "GX_ANALYTICS_ENABLED": "false"})


#: The servers a test can run on, by the name in its id (`test_x[nx]`). `nx` is the embedded default; tests
#: marked `both_servers` (the correctness core) also run on `ferretdb`. With LINKAGE_TEST_MONGO_URI set,
#: every test runs once, on that server, named `uri`.
SERVERS = ("nx", "ferretdb")
GIVEN_URI = os.environ.get("LINKAGE_TEST_MONGO_URI")


class GivenServer:
    """A server the user runs (LINKAGE_TEST_MONGO_URI): used as it is, never started or stopped here."""

    def __init__(self, uri: str) -> None:
        self.uri = uri if uri.endswith("/") or "?" in uri else uri + "/"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_servers: the correctness core; runs on nx and on FerretDB")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses the server is parametrized by its name, so the report says which it ran on."""
    if "wire_server" not in metafunc.fixturenames:
        return
    names = ["uri"] if GIVEN_URI else list(SERVERS) if metafunc.definition.get_closest_marker("both_servers") \
        else ["nx"]
    metafunc.parametrize("wire_server", names, indirect=True, scope="session")


def _started(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    reason = ferretdb.missing() if name == "ferretdb" else None
    if reason:
        pytest.skip(reason)
    server = ferretdb.by_name()[name](free_port(), tmp_path_factory.mktemp(f"{name}-db")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """The nx-27017 server on a free port in a temporary directory, stopped by PID at the end."""
    yield from _started("nx", tmp_path_factory)


@pytest.fixture(scope="session")
def ferretdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ferretdb.FerretDBServer]:
    """FerretDB on its SQLite backend in a temporary directory of its own, stopped at the end (skipped, with
    the reason, where it is not built)."""
    yield from _started("ferretdb", tmp_path_factory)


@pytest.fixture(scope="session")
def wire_server(request: pytest.FixtureRequest) -> Any:
    """The server this test runs on, by its name (see SERVERS); each is started once per session."""
    if request.param == "uri":
        return GivenServer(str(GIVEN_URI))
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture(scope="session")
def client(wire_server: Any) -> Iterator[MongoClient]:
    c: MongoClient = MongoClient(wire_server.uri, serverSelectionTimeoutMS=5000)
    yield c
    c.close()


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    """A database of its own for each test (one SQLite file each on the server)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"t{next(_names)}_{os.getpid()}_{request.node.name[:20]}")


@pytest.fixture
def settings(wire_server: Any, db_name: str, tmp_path: Path) -> Settings:
    return Settings(mongo_uri=wire_server.uri, db=db_name, home=tmp_path / "linkage", lock_ttl_seconds=30,
                    app_quiet=app_quiet(wire_server))


@pytest.fixture
def db(client: MongoClient, db_name: str) -> Iterator[Database]:
    yield client[db_name]
    client.drop_database(db_name)


@pytest.fixture
def lk(settings: Settings, client: MongoClient) -> Iterator[Linkage]:
    yield Linkage(settings, client)


@pytest.fixture
def seeded(db: Database) -> dict[str, Any]:
    """A small seeded database (what `linkage seed` plants, at 600 customers)."""
    return seed(db, customers=600, seed_value=11)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Airflow's metadata database (SQLite), migrated once per session."""
    done = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def airflow_env(airflow_db: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """`mongo_default` points at this test's database; backups and Data Docs under its linkage home."""
    host_port = settings.mongo_uri.removeprefix("mongodb://").rstrip("/")
    monkeypatch.setenv("AIRFLOW_CONN_MONGO_DEFAULT", f"mongo://{host_port}/{settings.db}")
    monkeypatch.setenv("LINKAGE_HOME", str(settings.home))
    return settings


@pytest.fixture
def dagbag(airflow_db: str) -> Any:
    """Parsed afresh for each test: `dag.test(run_conf=...)` changes the DAG's params in place."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(ROOT / "dags"))


@pytest.fixture(scope="module")
def airflow_app(airflow_db: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """Airflow's api-server app with this project's plugin, users `admin` (role admin) and `viewer` (role
    viewer: reads, may not decide), and their generated passwords."""
    from airflow.api_fastapi.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer")
        app = create_app()
        yield app, json.loads((Path(airflow_db) / "simple_auth_manager_passwords.json.generated").read_text())


def signed_in(app_and_passwords: tuple[Any, dict[str, str]], user: str) -> Any:
    """A client of the app signed in as `user` the way a browser is (the session cookie)."""
    from fastapi.testclient import TestClient

    app, passwords = app_and_passwords
    client = TestClient(app)
    token = client.post("/auth/token", json={"username": user, "password": passwords[user]})
    assert token.status_code == 201, token.text
    client.cookies.set("_token", token.json()["access_token"])  # as a browser holds it after logging in
    return client


@pytest.fixture(scope="module")
def airflow_api(airflow_app: tuple[Any, dict[str, str]]) -> Any:
    """The app, signed in as `admin` (who may decide)."""
    return signed_in(airflow_app, "admin")


@pytest.fixture(scope="module")
def airflow_viewer(airflow_app: tuple[Any, dict[str, str]]) -> Any:
    """The app, signed in as `viewer` (role viewer: reads the queue, may not decide)."""
    return signed_in(airflow_app, "viewer")
