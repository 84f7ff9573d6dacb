"""Fixtures: one real wire-protocol server per test session, a fresh database per test."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from linkage.pipeline import Linkage
from linkage.seed import seed
from linkage.server import EmbeddedServer, free_port
from linkage.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
_names = itertools.count()


@pytest.fixture(scope="session")
def wire_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """The nx-27017 server on a free port in a temporary directory, stopped by PID at the end."""
    server = EmbeddedServer(free_port(), tmp_path_factory.mktemp("wire-db")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(wire_server: EmbeddedServer) -> Iterator[MongoClient]:
    c: MongoClient = MongoClient(wire_server.uri, serverSelectionTimeoutMS=5000)
    yield c
    c.close()


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    """A database of its own for each test (one SQLite file each on the server)."""
    return f"t{next(_names)}_{os.getpid()}_{request.node.name[:20]}".replace("[", "_").replace("]", "_").replace("-", "_")


@pytest.fixture
def settings(wire_server: EmbeddedServer, db_name: str, tmp_path: Path) -> Settings:
    return Settings(mongo_uri=wire_server.uri, db=db_name, backup_dir=tmp_path / "backups", lock_ttl_seconds=30)


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


def run_cli(settings: Settings, *args: str, timeout: float = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `linkage` command in a subprocess, against the test server."""
    full_env = {**os.environ, "LINKAGE_MONGO_URI": settings.mongo_uri, "LINKAGE_DB": settings.db,
                "LINKAGE_BACKUP_DIR": str(settings.backup_dir), **(env or {})}
    return subprocess.run([sys.executable, "-m", "linkage.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=ROOT)
