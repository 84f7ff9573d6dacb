"""Issues 7 and 15: docker-compose.yaml is checked by structure (no Docker engine runs here),
its configuration against the one `make cluster` runs with, and its secure defaults one by one:
ports on 127.0.0.1, MongoDB unpublished and authenticated with the runbook's least-privilege
user, no fallback password, a change-me or empty one refused in one line, a Fernet key
generated on the first start and kept."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import ROOT, RUNBOOK_ROLE, privileges

COMPOSE_TEXT = (ROOT / "docker-compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, Any] = COMPOSE["services"]
AIRFLOW = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"]
STATEFUL = ["postgres", "redis", "mongo"]
SHARED_ENV = "deploy/airflow.env"
PASSWORDS = ["POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "MONGO_ROOT_PASSWORD",
             "LINKAGE_MONGO_PASSWORD"]
INIT = ROOT / "deploy" / "init_config.py"


def pinned(requirement: str) -> str:
    match = re.search(rf"^{re.escape(requirement)}==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert match, requirement
    return match.group(1)


class Missing(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        value = env.get(name)
        if op == ":?" and not value or op == "?" and value is None:
            raise Missing(f"required variable {name} is missing a value: {arg}")
        if op == ":-" and not value or op == "-" and value is None:
            return arg
        return value or ""
    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", one, text)


def example_env(**overrides: str) -> dict[str, str]:
    """.env.example with real passwords (what a user does after `cp .env.example .env`)."""
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    env.update({name: f"{name.lower().replace('_', '')}0123456789" for name in PASSWORDS})
    env.update(overrides)
    return env


def config_service(env: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(interpolate(COMPOSE_TEXT, env))["services"]["airflow-config"]


def run_init(service: dict[str, Any], secrets: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy/init_config.py with the compose service's own arguments and environment, secrets in tmp."""
    args = list(service["command"])
    args[args.index("--secrets") + 1] = str(secrets)
    owner = args.index("--owner")
    del args[owner:owner + 2]  # the tests run as whoever they run as
    service_env = {k: "" if v is None else str(v) for k, v in service["environment"].items()}
    return subprocess.run([sys.executable, str(INIT), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], **service_env, **env})


def test_every_service_has_an_image_or_a_build_and_images_are_pinned() -> None:
    assert set(AIRFLOW + STATEFUL + ["airflow-init", "airflow-config", "mailpit", "mongo-seed"]) <= set(SERVICES)
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        image = service.get("image", "")
        assert image and not image.endswith(":latest") and ":" in image, f"{name}: pin the image"
    assert SERVICES["mongo"]["image"].startswith("mongo:")


def test_stateful_and_airflow_services_have_healthchecks_and_wait_for_healthy_dependencies() -> None:
    for name in STATEFUL + AIRFLOW + ["mailpit"]:
        assert SERVICES[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in AIRFLOW:
        depends = SERVICES[name]["depends_on"]
        for dependency in STATEFUL:
            assert depends[dependency]["condition"] == "service_healthy", (name, dependency)
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
    assert SERVICES["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_nothing_starts_before_the_configuration_is_checked() -> None:
    """The stateful services wait for airflow-config; every Airflow service waits for them."""
    for name in STATEFUL:
        assert SERVICES[name]["depends_on"]["airflow-config"]["condition"] == "service_completed_successfully", name
    assert SERVICES["airflow-config"]["depends_on"] == {} and SERVICES["airflow-config"]["restart"] == "no"
    assert SERVICES["airflow-config"]["entrypoint"] == ["python", "/opt/airflow/deploy/init_config.py"]


def test_airflow_services_take_their_whole_configuration_from_the_shared_file() -> None:
    """deploy/airflow.env is the only source of Airflow settings, connections and paths (make cluster's too)."""
    shared = {}
    for line in (ROOT / SHARED_ENV).read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            shared[key] = value
    assert not any("$" in value for value in shared.values()), "compose would interpolate it"
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert shared["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert shared["AIRFLOW__SECRETS__BACKEND"].endswith("LocalFilesystemBackend")
    assert shared["LINKAGE_BACKUP_DIR"] == "/opt/airflow/backups"
    assert shared["LINKAGE_DOCS_DIR"] == "/opt/airflow/gx_docs"
    for name in AIRFLOW + ["airflow-init", "airflow-config", "mongo-seed"]:
        service = SERVICES[name]
        assert service["env_file"] == [SHARED_ENV], name
        assert not [k for k in service.get("environment", {}) if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))], name
        mounts = {v.split(":")[1]: v for v in service["volumes"]}
        assert {"/opt/airflow/deploy", "/opt/airflow/secrets"} <= set(mounts), name
        if name != "airflow-config":
            assert {"/opt/airflow/dags", "/opt/airflow/include", "/opt/airflow/plugins", "/opt/airflow/logs",
                    "/opt/airflow/backups", "/opt/airflow/gx_docs"} <= set(mounts), name
            assert mounts["/opt/airflow/secrets"].endswith(":ro"), f"{name} may only read the secrets"
    # the paths the shared file names are the volumes every worker shares
    volumes = {v.split(":")[1]: v.split(":")[0] for v in COMPOSE["x-airflow-common"]["volumes"]}
    assert volumes["/opt/airflow/backups"] in COMPOSE["volumes"]
    assert volumes["/opt/airflow/gx_docs"] in COMPOSE["volumes"]


def test_published_ports_are_bound_to_localhost_and_mongodb_is_not_published() -> None:
    published = {name: service["ports"] for name, service in SERVICES.items() if "ports" in service}
    assert set(published) == {"airflow-apiserver", "mailpit"}
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert "ports" not in SERVICES["mongo"] and "ports" not in SERVICES["airflow-worker"]
    override = yaml.safe_load((ROOT / "deploy" / "compose.mongo-port.yaml").read_text())
    assert override["services"]["mongo"]["ports"] == ["127.0.0.1:${MONGO_PORT:-27017}:27017"]


def test_every_password_is_required_with_no_fallback() -> None:
    for name in PASSWORDS:
        uses = re.findall(rf"\$\{{{name}([^}}]*)\}}", COMPOSE_TEXT)
        assert uses, name
        assert all(use.startswith(":?") for use in uses), f"{name} must be ${{{name}:?...}}, never defaulted"
    assert ":-airflow" not in COMPOSE_TEXT and "admin:admin" not in COMPOSE_TEXT
    for name in PASSWORDS:
        env = example_env()
        del env[name]
        with pytest.raises(Missing, match=name):
            interpolate(COMPOSE_TEXT, env)
    interpolate(COMPOSE_TEXT, example_env())  # all set: no error


@pytest.mark.parametrize("value", ["change-me", "", "  ", "CHANGE-ME"])
def test_a_change_me_or_empty_password_is_refused_in_one_line(tmp_path: Path, value: str) -> None:
    for name in PASSWORDS:
        env = example_env(**{name: value})
        service = config_service({**env, name: "x" * 20})  # compose itself lets a present value through
        done = run_init(service, tmp_path / name, {name: value})
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("refusing to start: ") and name in done.stderr
        assert not (tmp_path / name / "sql_alchemy_conn").exists(), "nothing written"
    example = (ROOT / ".env.example").read_text()
    assert all(f"{name}=change-me\n" in example for name in PASSWORDS)


def test_the_fernet_key_is_generated_on_the_first_start_and_kept(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    service = config_service(example_env())
    first = run_init(service, tmp_path, {})
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "fernet_key").read_text()
    token = Fernet(key.encode()).encrypt(b"a connection password")
    jwt = (tmp_path / "jwt_secret").read_text()
    assert run_init(service, tmp_path, {}).returncode == 0
    assert (tmp_path / "fernet_key").read_text() == key and (tmp_path / "jwt_secret").read_text() == jwt
    assert Fernet(key.encode()).decrypt(token) == b"a connection password"
    # a different key later would leave every stored password unreadable: refused
    other = base64.urlsafe_b64encode(b"k" * 32).decode()
    refused = run_init(service, tmp_path, {"AIRFLOW_FERNET_KEY": other})
    assert refused.returncode == 2 and "AIRFLOW_FERNET_KEY" in refused.stderr
    # a key given on the first start is the one kept
    given = run_init(service, tmp_path / "given", {"AIRFLOW_FERNET_KEY": other})
    assert given.returncode == 0 and (tmp_path / "given" / "fernet_key").read_text() == other
    for secret in tmp_path.iterdir():
        if secret.is_file():
            assert secret.stat().st_mode & 0o077 == 0, secret
    # Airflow reads the kept key (and no empty AIRFLOW__CORE__FERNET_KEY can shadow it)
    shared = (ROOT / SHARED_ENV).read_text()
    assert "AIRFLOW__CORE__FERNET_KEY_CMD=cat /opt/airflow/secrets/fernet_key" in shared
    assert "AIRFLOW__API_AUTH__JWT_SECRET_CMD=cat /opt/airflow/secrets/jwt_secret" in shared
    assert "AIRFLOW__CORE__FERNET_KEY=" not in COMPOSE_TEXT + shared


def test_the_bundled_mongodb_requires_authentication_with_the_runbooks_least_privilege_user(tmp_path: Path) -> None:
    mongo = SERVICES["mongo"]
    assert "--auth" in mongo["command"] and "--replSet" not in mongo["command"]
    assert mongo["environment"]["MONGO_INITDB_ROOT_USERNAME"] == "root"
    assert mongo["environment"]["MONGO_INITDB_ROOT_PASSWORD"].startswith("${MONGO_ROOT_PASSWORD:?")
    assert "./deploy/mongo-init:/docker-entrypoint-initdb.d:ro" in mongo["volumes"]
    assert any(v.startswith("mongo-data:") for v in mongo["volumes"])

    init = (ROOT / "deploy" / "mongo-init" / "10-linkage-user.js").read_text()
    assert privileges(init) == privileges(RUNBOOK_ROLE) and len(privileges(init)) >= 12
    assert 'createUser({user: "linkage", pwd: process.env.LINKAGE_MONGO_PASSWORD, roles: ["linkage"]})' in init
    assert not [p for p in privileges(init) if "remove" in p[1] and not p[0].startswith("linkage_")]

    # the pipeline connects as that user, never as root
    done = run_init(config_service(example_env()), tmp_path, {})
    assert done.returncode == 0, done.stderr
    mongo_default = json.loads((tmp_path / "connections.json").read_text())["mongo_default"]
    password = example_env()["LINKAGE_MONGO_PASSWORD"]
    assert mongo_default.startswith(f"mongo://linkage:{password}@mongo:27017/app?authSource=admin&")
    assert password not in done.stdout + done.stderr


def test_versions_agree_with_requirements_and_no_secret_is_committed() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_VERSION={pinned('apache-airflow')}" in dockerfile
    assert "-r /requirements.txt" in dockerfile and "FROM apache/airflow:${AIRFLOW_VERSION}-python3.11" in dockerfile
    assert SERVICES["airflow-apiserver"]["image"].endswith(pinned("apache-airflow"))
    assert pinned("apache-airflow-providers-celery") and pinned("psycopg2-binary") and pinned("asyncpg")
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    assert "LINKAGE_MONGO_CONN=" in example and "AIRFLOW_FERNET_KEY=\n" in example


@pytest.mark.parametrize("name", AIRFLOW)
def test_airflow_services_run_the_right_command(name: str) -> None:
    expected = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                "airflow-dag-processor": "dag-processor",
                "airflow-triggerer": "triggerer", "airflow-worker": "celery worker"}[name]
    assert SERVICES[name]["command"] == expected
    assert "container_name" not in SERVICES["airflow-worker"]
