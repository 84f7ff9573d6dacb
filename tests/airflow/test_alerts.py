"""Issue 4 acceptance: a failed validation reaches a real SMTP server and a webhook, with no PII."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pymongo.database import Database

from linkage.core.settings import Settings
from linkage.dev.seed import seed
from linkage.dev.server import free_port
from linkage.run.alerts import Alert
from linkage.run.events import Event
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate

from helpers import last_json, run_cli

pytestmark = pytest.mark.airflow


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "linkage@example.org",
                  "to": "oncall@example.org", "timeout": 10}}))
    yield inbox
    controller.stop()


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AIRFLOW_CONN_LINKAGE_WEBHOOK", json.dumps(
        {"conn_type": "http", "host": f"http://127.0.0.1:{server.server_port}/hooks/linkage"}))
    yield received
    server.shutdown()


def decoded(envelope: Any) -> str:
    """Subject and every text part of a received message, decoded."""
    message = message_from_bytes(envelope.content)
    parts = [p.get_payload(decode=True).decode() for p in message.walk() if not p.is_multipart()]
    return "\n".join([message["Subject"], *parts])


def raw_pii(db: Database) -> list[str]:
    values = []
    for name in ("users", "customers_v2"):
        for doc in db[name].find({}, {"phone": 1, "email": 1}):
            values += [str(v).strip() for v in (doc.get("phone"), doc.get("email")) if v and len(str(v).strip()) >= 8]
    return values


@pytest.mark.slow
def test_a_failed_validation_emails_and_posts_the_alert_without_pii(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, smtp: Inbox, webhook: list[dict]) -> None:
    db.users.update_one({"role": "customer"},
                        {"$set": {"email": "leaky.person@example.com", "phone": "+91 98888 77777"}})
    run = dagbag.get_dag("linkage_migration").test(run_conf={"min_user_coverage": 0.999})
    linkage_run = f"linkage_migration:{run.run_id}"

    subjects = [message_from_bytes(m.content)["Subject"] for m in smtp.messages]
    assert any("validation failed" in s for s in subjects), subjects
    assert any("run rolled back" in s for s in subjects), subjects
    failed = next(m for m in smtp.messages if "validation failed" in message_from_bytes(m.content)["Subject"])
    body = decoded(failed)
    assert failed.rcpt_tos == ["oncall@example.org"]
    assert linkage_run in body and "user_coverage" in body and "observed" in body and "task log:" in body
    docs = db[airflow_env.collection("runs")].find_one({"_id": linkage_run})["validation"]["data_docs"]
    assert f"/linkage/docs/{docs}" in body  # the run's own Data Docs, its run id unmasked

    events = [hook["linkage"]["event"] for hook in webhook]
    assert "validation_failed" in events and "rolled_back" in events
    posted = next(hook for hook in webhook if hook["linkage"]["event"] == "validation_failed")
    assert posted["text"].startswith("[linkage] validation failed") and posted["linkage"]["run_id"] == linkage_run
    assert posted["linkage"]["failing"][0]["name"] == "user_coverage"

    everything = json.dumps(webhook) + "".join(decoded(m) for m in smtp.messages)
    assert [v for v in raw_pii(db) if v in everything] == []
    stored = list(db[airflow_env.collection("alerts")].find({"run_id": linkage_run}))
    # no "a task failed", and no "drift found": drift pages only a run that is kept (the failure alerts list it)
    assert {a["event"] for a in stored} == {"validation_failed", "rolled_back"}
    assert all(a["delivered"] == ["log", "email", "webhook"] and a["undelivered"] is None for a in stored)
    assert "http://localhost:8080/linkage/docs/" in body  # the run's Data Docs, served by the plugin


def test_an_alert_masks_whatever_pii_reaches_its_reason() -> None:
    alert = Alert(event=Event.TASK_FAILED, dag_id="linkage_migration", run_id="linkage_migration:x",
                  reason="could not reach mongodb://linkage:S3cret@db:27017 for asha@example.com +91 98765 43210")
    text = alert.text() + json.dumps(alert.webhook_payload())
    assert "S3cret" not in text and "asha@example.com" not in text and "98765 43210" not in text
    assert "linkage:***@db" in text and "What to do" not in text and "what to do:" in text


def test_a_rollback_alert_says_its_drift_was_found_beside_the_runs_writes_and_not_why_the_night_paged() -> None:
    """A rollback puts back what the run found, so the drift its validation counted is no longer the data's
    (a repair undone reopens its pair): the alert says so and points at `linkage validate`; the paging line
    is about the run's night, not its rollback."""
    drift = [{"name": "order_refs_dangling", "drift": 23, "description": "every set order_id names an order"}]
    paging = "drift unchanged: 23 open, none new since run-1 (today)"
    rolled = Alert(event=Event.ROLLED_BACK, run_id="run-2", drift=drift, paging=paging).text()
    kept = Alert(event=Event.DRIFT_REMINDER, run_id="run-2", drift=drift, paging=paging).text()
    assert "drift the run found beside its own writes" in rolled and "linkage validate" in rolled
    assert paging not in rolled and "drift open" not in rolled
    assert paging in kept and "drift open (not caused by this run):" in kept


def test_a_run_id_in_a_link_is_not_taken_for_a_phone() -> None:
    """An Airflow run id's microseconds and UTC offset (`.507346-00-00`) look like a phone to a digit
    pattern; the alert's Data Docs link must survive masking whole, and a phone beside it must not."""
    link = "http://localhost:8080/linkage/docs/linkage_migration-manual__2026-11-26T15-11-01.507346-00-00/index.html"
    alert = Alert(event=Event.VALIDATION_FAILED, dag_id="linkage_migration", run_id="linkage_migration:x",
                  data_docs=link, reason="user 98765-43210 has no customer")
    text = alert.text() + json.dumps(alert.webhook_payload())
    assert text.count(link) == 3 and "98765-43210" not in text  # the text, the posted text, the posted field


@pytest.mark.slow
def test_an_alert_with_no_channel_says_it_reached_only_the_log(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, caplog: pytest.LogCaptureFixture) -> None:
    run = dagbag.get_dag("linkage_migration").test(run_conf={"min_user_coverage": 0.999})
    stored = list(db[airflow_env.collection("alerts")].find({"run_id": f"linkage_migration:{run.run_id}"}))
    assert stored and all(a["delivered"] == ["log"] and "smtp_default" in a["undelivered"] for a in stored)
    errors = [r for r in caplog.records if r.name == "linkage.run.alerts" and r.levelname == "ERROR"]
    assert any(r.getMessage().startswith("ALERT [linkage] validation failed") for r in errors)
    assert any("ALERT NOT DELIVERED beyond the log" in r.getMessage() for r in errors)


def events_in_order(db: Database, settings: Settings, run_id: str) -> list[str]:
    return [a["event"] for a in db[settings.collection("alerts")].find({"run_id": run_id}).sort("at", 1)]


@pytest.mark.slow
@pytest.mark.parametrize(("conf", "expected"), [
    ({"min_user_coverage": 0.999}, ["validation_failed", "rolled_back"]),
    ({}, ["drift_found"]),
], ids=["rolled-back", "kept-with-drift"])
def test_the_cli_and_a_dag_run_send_the_same_alerts_in_the_same_order(
        dagbag: Any, airflow_env: Settings, db: Database, seeded: dict, client: Any, conf: dict,
        expected: list[str]) -> None:
    """The stages raise the events, in one place for both executors: the same run, the same alerts, in order."""
    twin = airflow_env.model_copy(update={"db": f"{db.name}_cli"})
    seed(client[twin.db], customers=600, seed_value=11)  # the `seeded` fixture's data, again
    try:
        flags = [arg for name, value in conf.items() for arg in (f"--{name.replace('_', '-')}", str(value))]
        done = run_cli(twin, "migrate", "--json", "--quiet", *flags)
        cli_run = last_json(done.stdout)["run_id"]
        dag_run = dagbag.get_dag("linkage_migration").test(run_conf=conf)
        from_dag = events_in_order(db, airflow_env, f"linkage_migration:{dag_run.run_id}")
        assert events_in_order(client[twin.db], twin, cli_run) == from_dag == expected
    finally:
        client.drop_database(twin.db)


def test_log_levels_match_outcomes_error_only_for_failed_or_rolled_back_runs(
        lk: Linkage, seeded: dict, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 23: a kept run's drift alert was logged at ERROR and a dry run warned of every expectation it
    found failing. Now a dry run's findings are INFO, a kept run's drift a WARNING with its count, and ERROR
    is for a run that failed or was rolled back."""
    def levels(**params: Any) -> tuple[Any, list[logging.LogRecord]]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="linkage"):
            report = migrate(lk, MigrationParams(**params), "test", new=True)
        return report, [r for r in caplog.records if r.name.startswith("linkage")]

    dry, records = levels(dry_run=True)
    assert dry.drift and dry.drift.total and dry.validation and not dry.validation.success
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []
    assert any("found by a dry run, judged by a real run" in r.getMessage() for r in records)

    kept, records = levels()
    assert kept.state == "succeeded" and kept.drift and kept.drift.total
    assert [r.getMessage()[:60] for r in records if r.levelno >= logging.ERROR] == []
    alert = [r for r in records if r.getMessage().startswith("ALERT")]
    assert [r.levelname for r in alert] == ["WARNING"]
    new = sum(kept.drift.new.values())  # what paged leads the line, then what is open (issue 20's trial)
    assert new and alert[0].getMessage().startswith(
        f"ALERT +{new} new, {kept.drift.total} open drift items: [linkage] new drift found")

    failed, records = levels(min_order_coverage=0.999)
    assert failed.state == "rolled_back"
    assert {r.getMessage().split(":")[0] for r in records if r.levelno >= logging.ERROR} == {
        "ALERT [linkage] validation failed", "ALERT [linkage] run rolled back"}
