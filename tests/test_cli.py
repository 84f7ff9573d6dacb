"""The `linkage` command as a user meets it: errors, progress, serve-db, seed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo.database import Database

from linkage.server import answers_ping, free_port
from linkage.settings import Settings

from helpers import ROOT, last_json, raw_bytes, review_state, run_cli


def test_unreachable_server_and_bad_uri_give_one_line_errors(settings: Settings) -> None:
    dead = f"mongodb://127.0.0.1:{free_port()}/"
    for uri, expected in [(dead, "cannot reach MongoDB"), ("http://nope", "invalid MongoDB URI")]:
        started = time.monotonic()
        done = run_cli(settings, "status", env={"LINKAGE_MONGO_URI": uri, "LINKAGE_SERVER_TIMEOUT_MS": "1000"})
        assert done.returncode == 1
        assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr
        assert time.monotonic() - started < 30


def test_seed_is_deterministic_and_refuses_to_overwrite(settings: Settings, db: Database) -> None:
    first = last_json(run_cli(settings, "seed", "--customers", "200", "--seed", "3", "--json").stdout)
    refused = run_cli(settings, "seed", "--customers", "200")
    assert refused.returncode == 1 and "--replace" in refused.stderr
    again = last_json(run_cli(settings, "seed", "--customers", "200", "--seed", "3", "--replace", "--json").stdout)
    assert first["planted"] == again["planted"] and first["documents"] == again["documents"]
    assert set(first["planted"]["user_customer"]) == {
        "linked", "ambiguous", "conflict", "unmatched", "invalid", "already_linked", "dangling", "one_sided"}
    assert set(first["planted"]["order_delivery"]) == {
        "linked", "ambiguous", "unmatched", "invalid", "already_linked", "dangling"}


@pytest.mark.slow
def test_migrate_reports_progress_on_stderr_and_json_last_on_stdout(settings: Settings, seeded: dict) -> None:
    done = run_cli(settings, "migrate", "--json", "--batch-size", "200", env={"LINKAGE_PROGRESS_INTERVAL": "0"})
    assert done.returncode == 0, done.stderr
    assert "docs/s, ETA" in done.stderr
    report = last_json(done.stdout)
    assert set(report) >= {"run_id", "state", "steps", "validation"}


def test_serve_db_answers_ping_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "linkage.cli", "serve-db", "--port", str(port),
                             "--data-dir", str(tmp_path / "db")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert "wire server on" in proc.stdout.readline()
        assert answers_ping(f"mongodb://127.0.0.1:{port}/")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert not answers_ping(f"mongodb://127.0.0.1:{port}/")
    finally:
        proc.kill()


@pytest.mark.slow
def test_reconcile_dry_run_writes_nothing_and_status_marks_it(settings: Settings, db: Database, seeded: dict) -> None:
    assert run_cli(settings, "migrate", "--quiet").returncode == 0
    db.users.update_one({"role": "customer", "customer_v2_id": {"$gt": ""}}, {"$unset": {"customer_v2_id": ""}})
    data, queue = raw_bytes(db), review_state(db, settings)
    dry = run_cli(settings, "reconcile", "--dry-run", "--json", "--quiet")
    assert dry.returncode == 0, dry.stderr
    report = last_json(dry.stdout)
    assert report["dry_run"] is True and report["kind"] == "reconcile"
    assert report["steps"]["user_customer"]["linked"] >= 1  # it would repair the pair the app broke
    assert raw_bytes(db) == data and review_state(db, settings) == queue

    shown = run_cli(settings, "status")
    line = next(row for row in shown.stdout.splitlines() if report["run_id"] in row)
    assert "DRY RUN" in line and "succeeded" in line


@pytest.mark.slow
def test_rollback_says_so_when_there_is_nothing_to_do(settings: Settings, db: Database, seeded: dict) -> None:
    migrated = last_json(run_cli(settings, "migrate", "--json", "--quiet").stdout)
    first = run_cli(settings, "rollback", "--run-id", migrated["run_id"], "--json")
    assert first.returncode == 0 and last_json(first.stdout)["state"] == "rolled_back"
    data = raw_bytes(db)
    second = run_cli(settings, "rollback", "--run-id", migrated["run_id"])
    assert second.returncode == 0 and "was already rolled back: nothing to do" in second.stdout
    assert raw_bytes(db) == data
    planned = last_json(run_cli(settings, "plan", "--json", "--quiet").stdout)
    refused = run_cli(settings, "rollback", "--run-id", planned["run_id"])
    assert refused.returncode == 1 and "was a dry run: it wrote nothing to roll back" in refused.stderr
