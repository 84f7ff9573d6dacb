"""Issue 7: docker-compose.yaml is checked by structure (no Docker engine runs here)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
AIRFLOW = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"]
STATEFUL = ["postgres", "redis", "mongo"]


def pinned(requirement: str) -> str:
    match = re.search(rf"^{re.escape(requirement)}==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert match, requirement
    return match.group(1)


def test_every_service_has_an_image_or_a_build_and_images_are_pinned() -> None:
    assert set(AIRFLOW + STATEFUL + ["airflow-init", "mailpit", "mongo-seed"]) <= set(SERVICES)
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


def test_airflow_services_mount_the_project_and_get_the_connections_the_dags_need() -> None:
    for name in AIRFLOW + ["airflow-init"]:
        service = SERVICES[name]
        mounts = {v.split(":")[1] for v in service["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/include", "/opt/airflow/plugins"} <= mounts, name
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW_CONN_MONGO_DEFAULT"].startswith("${LINKAGE_MONGO_CONN")
        assert "mailpit" in env["AIRFLOW_CONN_SMTP_DEFAULT"]
        assert "postgres" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert "redis" in env["AIRFLOW__CELERY__BROKER_URL"]


def test_workers_scale_and_mongo_is_a_replica_set_with_a_volume() -> None:
    worker = SERVICES["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert "--replSet" in SERVICES["mongo"]["command"]
    assert any(v.startswith("mongo-data:") for v in SERVICES["mongo"]["volumes"])
    assert SERVICES["mongo-seed"]["profiles"] == ["demo"]


def test_versions_agree_with_requirements_and_no_secret_is_committed() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_VERSION={pinned('apache-airflow')}" in dockerfile
    assert "-r /requirements.txt" in dockerfile and "FROM apache/airflow:${AIRFLOW_VERSION}-python3.11" in dockerfile
    assert SERVICES["airflow-apiserver"]["image"].endswith(pinned("apache-airflow"))
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    assert "LINKAGE_MONGO_CONN=" in example and "AIRFLOW_FERNET_KEY=\n" in example


@pytest.mark.parametrize("name", AIRFLOW)
def test_airflow_services_run_the_right_command(name: str) -> None:
    expected = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                "airflow-dag-processor": "dag-processor",
                "airflow-triggerer": "triggerer", "airflow-worker": "celery worker"}[name]
    assert SERVICES[name]["command"] == expected
