"""`make airflow` comes up healthy, runs a REST-triggered migration, and stops everything it started.

Bounded: it starts the script in a session of its own, on free ports, with its own
state directory, and ends every process of that session, whatever happens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from local_airflow import LocalAirflow

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.mark.timeout(420)
def test_local_airflow_is_healthy_within_two_minutes_and_a_rest_triggered_run_succeeds(tmp_path: Path) -> None:
    airflow = LocalAirflow(tmp_path)
    try:
        airflow.start(within=120)
        run = airflow.run("linkage_migration", {"partitions": 2})
        assert run["state"] == "success", run
        assert run["note"].startswith("linked order_delivery ")
    finally:
        airflow.stop()
    assert airflow.process is not None and airflow.process.returncode is not None, "airflow.sh did not stop"
    assert airflow.survivors == [], f"{len(airflow.survivors)} processes outlived airflow.sh"
