"""The `linkage` command as a user meets it: errors, progress, serve-db, seed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pymongo.database import Database

from linkage.cli.main import COMMANDS, build_parser
from linkage.core.errors import LinkageError, NotTheAppError
from linkage.core.mask import mask_uri
from linkage.core.settings import Settings
from linkage.core.words import size, tally
from linkage.dev.server import answers_ping, free_port
from linkage.mongo.connect import connect
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate

from helpers import ROOT, empty_app, last_json, raw_bytes, review_state, run_cli


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
    told = run_cli(settings, "seed", "--customers", "200", "--seed", "3", "--replace").stdout
    documents = ", ".join(f"{n:,} {name}" for name, n in sorted(first["documents"].items(), key=lambda kv: -kv[1]))
    assert told.splitlines()[0] == f"seeded {settings.db}: {documents}"  # words, not a Python dict
    assert "{" not in told and "  planted for order_delivery: " in told


@pytest.mark.slow
def test_migrate_reports_progress_on_stderr_and_json_last_on_stdout(settings: Settings, seeded: dict) -> None:
    done = run_cli(settings, "migrate", "--json", "--batch-size", "200", env={"LINKAGE_PROGRESS_INTERVAL": "0"})
    assert done.returncode == 0, done.stderr
    assert "docs/s, ETA" in done.stderr
    report = last_json(done.stdout)
    assert set(report) >= {"run_id", "state", "steps", "validation"}


def test_serve_db_answers_ping_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "linkage.cli.main", "serve-db", "--port", str(port),
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
    runs = [row for row in shown.stdout.splitlines() if row.startswith("  ") and "succeeded" in row]
    assert len(runs) == 2 and len({row.index("succeeded") for row in runs}) == 1, runs  # dry runs aligned too
    assert len({row.index("cli:") for row in runs}) == 1, runs  # and who ran them, after "DRY RUN drift found: N"
    users = next(row for row in shown.stdout.splitlines() if row.startswith("users.customer_v2_id"))
    assert users.endswith("of customer accounts (users with role customer)"), users
    items = shown.stdout.split("open review items:\n", 1)[1].split("recent runs:", 1)[0].splitlines()
    assert [row.split()[0] for row in items] == ["order_delivery", "user_customer"], items
    assert "{" not in shown.stdout and all(re.fullmatch(r"  \S+ +(\d[\d,]* \w+)(, \d[\d,]* \w+)*", r) for r in items)


@pytest.mark.slow
def test_rollback_says_so_when_there_is_nothing_to_do(settings: Settings, db: Database, seeded: dict) -> None:
    migrated = last_json(run_cli(settings, "migrate", "--json", "--quiet").stdout)
    first = run_cli(settings, "rollback", "--run-id", migrated["run_id"])
    linked = sum(counts["linked"] for counts in migrated["steps"].values())
    assert first.returncode == 0 and f"run {migrated['run_id']}: rolled_back" in first.stdout
    assert re.search(r"^  rollback: (\d+) fields restored$", first.stdout, re.M).group(1) == str(
        linked + migrated["steps"]["user_customer"]["linked"])  # a pair is two fields
    data = raw_bytes(db)
    second = run_cli(settings, "rollback", "--run-id", migrated["run_id"])
    assert second.returncode == 0 and "was already rolled back: nothing to do" in second.stdout
    assert re.search(r"^  rollback: done earlier \((\d+) fields restored\): nothing touched again$", second.stdout,
                     re.M).group(1) == str(linked + migrated["steps"]["user_customer"]["linked"])
    assert raw_bytes(db) == data
    planned = last_json(run_cli(settings, "plan", "--json", "--quiet").stdout)
    refused = run_cli(settings, "rollback", "--run-id", planned["run_id"])
    assert refused.returncode == 1 and "was a dry run: it wrote nothing to roll back" in refused.stderr


def test_validate_judges_the_data_as_it_stands_and_says_which_expectations_it_breaks(
        settings: Settings, seeded: dict) -> None:
    """The seed's dangling links count against the data itself (no run to tell its writes from drift): the
    failure names each broken expectation and its count, in words, not "run ended failed: see the run record"
    (there is no run) nor a dry run's label."""
    done = run_cli(settings, "validate")
    assert done.returncode == 1
    assert done.stdout.startswith("the data as it stands, judged without a run: every violation counts")
    last = done.stderr.strip().splitlines()[-1]
    dangling = seeded["planted"]["order_delivery"]["dangling"]
    assert last.startswith("linkage validate: failed: the data breaks ") and "run ended" not in last, last
    assert f"order_refs_dangling ({dangling}, expected <= 0)" in last, last
    assert "found by a dry run" not in done.stderr and f"observed {dangling}.0" not in done.stderr


def test_sizes_and_counts_read_as_words() -> None:
    """A targeted backup of a few documents is `3 KB`, not `0.0 MB` (issue 20's trial); counts lead with the
    largest."""
    assert [size(n) for n in (None, 512, 3204, 3_300_000, 1_250_000_000)] == ["-", "512 B", "3 KB", "3.3 MB", "1.2 GB"]
    assert tally({"invalid": 1, "linked": 1_200, "unmatched": 57}) == "1,200 linked, 57 unmatched, 1 invalid"


def test_a_dry_run_and_a_prune_with_nothing_to_do_say_so_without_alarm(settings: Settings, seeded: dict) -> None:
    """A newcomer read the demo's dry run `FAILED` as the demo failing, and `would delete 0 backups` as
    telling nothing."""
    planned = run_cli(settings, "plan", "--quiet")
    assert planned.returncode == 0, planned.stderr
    line = next(row for row in planned.stdout.splitlines() if "validation of the data as it stands" in row)
    assert "(a dry run links nothing): not met yet: " in line and "FAILED" not in planned.stdout, line
    pruned = run_cli(settings, "backups", "prune", "--dry-run")
    assert pruned.returncode == 0 and pruned.stdout.strip() == (
        "would delete 0 backups (0 B): nothing to delete (`linkage backups` says why each is kept)")


def test_a_typod_database_is_refused_in_one_line_naming_the_app_and_nothing_is_created(
        settings: Settings, db: Database, seeded: dict) -> None:
    """Issue 23: `--db appp` was a green run on nothing that left a database of bookkeeping behind."""
    typo = settings.db + "p"
    for command in (["plan"], ["migrate"], ["reconcile"], ["validate"], ["status"], ["rollback", "--run-id", "x"]):
        done = run_cli(settings, *command, "--db", typo)
        assert done.returncode == 1, (command, done.stdout)
        line = done.stderr.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in line, command
        assert f"database `{typo}` is not the app's: it lacks customers_v2, delivery_statuses, orders, users" in line
        assert f"did you mean `{settings.db}`?" in line, line
    assert typo not in db.client.list_database_names()
    assert not settings.home.exists() or not any(settings.home.rglob("*")), "backups or Data Docs were written"


def test_a_database_without_one_steps_collections_is_refused_for_that_step_only(
        settings: Settings, db: Database, lk: Linkage) -> None:
    """The steps say what they read: a run of order_delivery needs orders and delivery statuses, not users; the
    refusal comes before the bookkeeping (the Airflow preflight opens its run through the same `start_run`)."""
    db.orders.insert_one({"id": "o1", "customer_id": "c1", "delivery_date": "2026-01-01"})
    with pytest.raises(NotTheAppError, match="it lacks delivery_statuses, which the steps read"):
        start_run(lk, MigrationParams(steps=["order_delivery"]), "test")
    assert db.list_collection_names() == ["orders"]
    db.delivery_statuses.insert_one({"id": "d1", "customer_id": "c1", "delivery_date": "2026-01-01"})
    run_id, _ = start_run(lk, MigrationParams(steps=["order_delivery"], dry_run=True), "test")
    with pytest.raises(NotTheAppError, match="lacks customers_v2, users"):
        start_run(lk, MigrationParams(), "test")
    assert lk.runs.find(run_id) and "users" not in db.list_collection_names()


def test_coverage_of_no_documents_is_not_100_percent_and_fails_the_gate_unless_allowed(
        settings: Settings, db: Database, lk: Linkage) -> None:
    empty_app(db)
    shown = run_cli(settings, "status")
    assert shown.returncode == 0, shown.stderr
    coverage = [row for row in shown.stdout.splitlines() if " linked (" in row]
    assert len(coverage) == 3 and all("0/0 linked (no documents)" in row for row in coverage), coverage
    assert "100" not in shown.stdout
    refused = migrate(lk, MigrationParams(), "test")
    assert refused.state == "rolled_back" and refused.validation
    assert {e.name for e in refused.validation.failed} == {"order_coverage", "user_coverage"}
    assert all(e.note and e.note.startswith("no documents") for e in refused.validation.failed)
    allowed = migrate(lk, MigrationParams(allow_empty=True), "test", new=True)
    assert allowed.state == "succeeded", allowed.error
    one_step = migrate(lk, MigrationParams(steps=["user_customer"], allow_empty=True), "test", new=True)
    assert one_step.state == "succeeded"


def test_a_connection_failure_is_one_whole_sentence_sooner_than_the_timeout(settings: Settings) -> None:
    """Issue 23: the reason was cut mid-parenthesis (`... (configured timeouts: socketTimeoutMS: 5000.0ms`),
    and a port that is not MongoDB's gave `expected ***21`: protocol digits masked as a phone. A failure known
    at once does not say "within 3 s" (a newcomer who started the server a moment before read it as waited)."""
    with socket.socket() as speaks_http:
        speaks_http.bind(("127.0.0.1", 0))
        speaks_http.listen()
        threading.Thread(target=_answer_http, args=(speaks_http,), daemon=True).start()
        wrong = f"mongodb://linkage:secret@127.0.0.1:{speaks_http.getsockname()[1]}/"
        for uri in (f"mongodb://linkage:secret@127.0.0.1:{free_port()}/", wrong,
                    f"localhost:{free_port()}"):
            started = time.monotonic()
            with pytest.raises(LinkageError) as refused:
                connect(settings.model_copy(update={"mongo_uri": uri, "server_timeout_ms": 3000}))
            assert time.monotonic() - started < 3.0
            message = str(refused.value)
            assert message.startswith(f"cannot reach MongoDB at {mask_uri(uri)} (")  # not "within 3 s": it did not wait
            assert "(one started a moment ago may not yet)" in message
            assert "secret" not in message
            assert message.endswith("(LINKAGE_MONGO_URI or --uri).") and message.count("(") == message.count(")")
            assert "configured timeouts" not in message and "Topology" not in message
        done = run_cli(settings, "status", env={"LINKAGE_MONGO_URI": wrong})
    line = done.stderr.strip()
    assert done.returncode == 1 and len(line.splitlines()) == 1 and line.endswith("--uri).")
    assert "but expected " in line and "***" not in line.replace("linkage:***@", ""), line


def _answer_http(server: socket.socket) -> None:
    """A server on a port that does not speak MongoDB: whatever it is asked, an HTTP error."""
    while True:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + b"0" * 64)


def test_each_command_shows_only_its_own_options_each_with_help() -> None:
    """Issue 23: `serve-db --help` listed --uri, --db and --json; `--port` and `--data-dir` had no help."""
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == set(COMMANDS)
    for name, parser in commands.items():
        for action in parser._actions:
            assert action.help and action.help.strip(), f"{name} {action.option_strings}: no help"
    helps = {name: subprocess.run([sys.executable, "-m", "linkage.cli.main", name, "--help"], capture_output=True,
                                  text=True, cwd=ROOT, check=True).stdout for name in ("serve-db", "plan", "status")}
    assert "--port" in helps["serve-db"] and not {"--uri", "--db", "--json"} & set(helps["serve-db"].split())
    assert "--partitions" in helps["plan"] and not {"--backup-dir", "--no-rollback", "--new"} & set(
        helps["plan"].split())
    assert "--steps" not in helps["status"] and "--uri" in helps["status"]
    unknown = run_cli(Settings(home=ROOT / "var" / "unused"), "plan", "--steps", "orders")
    assert unknown.returncode == 2
    assert "unknown step 'orders': choose from order_delivery, user_customer" in unknown.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_demo_ends_with_the_way_back_in_and_one_home_for_what_follows(tmp_path: Path) -> None:
    """Issue 23: after `make demo` nothing answered, nothing said how to start it again, and the CLI runs that
    followed kept their history in another LINKAGE_HOME than the demo's."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LINKAGE_")},
           "XDG_DATA_HOME": str(tmp_path / "xdg"), "LINKAGE_VAR": str(tmp_path / "var"), "DEMO_PORT": str(port),
           "DEMO_CUSTOMERS": "300", "BIN": str(ROOT / ".venv" / "bin")}
    demo = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert demo.returncode == 0, demo.stderr[-2000:]
    home = tmp_path / "xdg" / "linkage"
    way_in = demo.stdout.strip().splitlines()[-4:]
    assert way_in[0].startswith("== done. The demo's database is stopped now")
    start, look = way_in[1].split("#")[0].strip(), way_in[2].strip()
    assert start.endswith("&") and look == f"{ROOT}/.venv/bin/linkage status --uri mongodb://127.0.0.1:{port}/"
    assert way_in[3].startswith(f"Backups and Data Docs of these runs: LINKAGE_HOME={home} ")
    assert not answers_ping(f"mongodb://127.0.0.1:{port}/"), "the demo left its database running"
    demo_runs = set(re.findall(r"^run ((?:dry-)?(?:migrate|reconcile)-\S+):", demo.stdout, re.M))
    assert len(demo_runs) == 4 and {p.name for p in (home / "data_docs").iterdir()} >= {
        run.replace(":", "-") for run in demo_runs}

    later = {k: v for k, v in env.items() if k not in ("LINKAGE_VAR", "DEMO_PORT", "DEMO_CUSTOMERS", "BIN")}
    server = subprocess.Popen(start.rstrip("&").split(), cwd=ROOT, env=later, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and "wire server on" in server.stdout.readline()
        # the demo again while its database runs: refused before anything is deleted (the status below reads it)
        again = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 1 and again.stderr.strip().endswith("nothing was deleted"), again.stderr
        status = subprocess.run(look.split(), cwd=ROOT, env=later, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert demo_runs <= set(re.findall(r"^  (\S+) ", status.stdout, re.M)), status.stdout
        planned = subprocess.run([*look.split()[:-3], "plan", "--quiet", "--json", *look.split()[-2:]], cwd=ROOT,
                                 env=later, capture_output=True, text=True, timeout=120)
        assert planned.returncode == 0, planned.stderr
        assert (home / "data_docs" / last_json(planned.stdout)["validation"]["data_docs"]).is_file()
    finally:
        server.terminate()
        server.wait(timeout=15)
    first = (tmp_path / "var" / "demo-history").read_text().split()
    assert len([p for p in first if "/backups/" in p]) == 3 and len([p for p in first if "/data_docs/" in p]) == 4
    assert [p for p in first if not Path(p).is_dir()] == []
    # the demo again deletes its database, and with it what its runs kept in the home: nothing is left unknown
    again = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [p for p in first if Path(p).exists()] == []
    assert "unknown" not in subprocess.run([*look.split()[:-3], "backups", *look.split()[-2:]], cwd=ROOT, env=later,
                                           capture_output=True, text=True, timeout=60).stdout
