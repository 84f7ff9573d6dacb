"""Airflow's channel for linkage alerts: email and webhook, and always the log and `linkage_alerts`.

`AirflowChannel` subscribes a task's engine handle to the events the stages
raise; `LinkageAlertNotifier` sends the alerts no stage raises (a task that
failed), as an `on_failure_callback`.

Email goes through Airflow's SMTP connection (`smtp_default`, recipients in its
extra `to` or LINKAGE_ALERT_EMAILS); the webhook (Slack-compatible JSON) through
the HTTP connection `linkage_webhook` when it exists. With neither configured
the alert still reaches the task log (at ERROR) and `linkage_alerts`, and the
log says that it went nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import BaseNotifier, Connection
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from linkage.airflow.connection import app_session
from linkage.airflow.context import linkage_run_id
from linkage.airflow.urls import docs_link
from linkage.core.errors import AlertedError
from linkage.core.mask import redact
from linkage.core.settings import Settings
from linkage.run.alerts import Alert, AlertStore, log_alert, post_webhook
from linkage.run.events import Event
from linkage.run.record import RunRecord

SMTP_CONN, WEBHOOK_CONN = "smtp_default", "linkage_webhook"


def _connection(conn_id: str) -> Any | None:
    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def webhook_url(conn: Any) -> str:
    """A full URL in the connection's host, or scheme (schema), host, port and extra `path`."""
    if conn.host.startswith(("http://", "https://")):
        return str(conn.host)
    scheme = conn.schema if conn.schema in ("http", "https") else "https"
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{conn.host}{port}{conn.extra_dejson.get('path', '')}"


def configured_channels() -> dict[str, bool]:
    """Which delivery channels beyond the log are configured (the Linkage view shows it)."""
    smtp = _connection(SMTP_CONN)
    recipients = (smtp.extra_dejson.get("to") if smtp else None) or Settings.from_env().alert_emails
    return {"email": bool(smtp and recipients), "webhook": _connection(WEBHOOK_CONN) is not None}


class AlertedFailure(AirflowFailException):
    """A task failing on purpose after sending its own alert: the generic `a task failed` alert stays quiet."""


def _where(context: Any) -> dict[str, Any]:
    ti = context["ti"]
    return {"dag_id": context["dag"].dag_id, "dag_run_id": context["run_id"], "task_id": ti.task_id,
            "log_url": getattr(ti, "log_url", None)}


class AirflowChannel:
    """Delivers a run's alerts from inside a task: each configured channel in turn, then the log and the store.

    A channel that fails is reported, never fails the task that alerts.
    """

    def __init__(self, context: Any, store: AlertStore | None, settings: Settings) -> None:
        """`store` None: the alert is delivered and logged but kept nowhere (the database is not the app's)."""
        self.where, self.store, self.settings = _where(context), store, settings

    def __call__(self, event: Event, run: RunRecord | None) -> None:
        where = dict(self.where)
        if run and run.validation:
            where["data_docs"] = docs_link(run.validation.data_docs)
        alert = Alert.from_run(event, run, **where)
        delivered, failures = self._deliver(alert)
        if failures:
            undelivered: str | None = "; ".join(failures)
        elif not delivered:
            undelivered = (f"no {SMTP_CONN} connection with recipients and no {WEBHOOK_CONN} connection: "
                           "this alert reached the task log and linkage_alerts only")
        else:
            undelivered = None
        if self.store is None:
            log_alert(alert, undelivered)
        else:
            self.store.record(alert, ["log", *delivered], undelivered)

    def _deliver(self, alert: Alert) -> tuple[list[str], list[str]]:
        delivered, failures = [], []
        smtp = _connection(SMTP_CONN)
        recipients = (smtp.extra_dejson.get("to") if smtp else None) or self.settings.alert_emails
        if smtp and recipients:
            try:
                _send_email(alert, smtp, recipients)
                delivered.append("email")
            except Exception as error:  # noqa: BLE001 - a mail outage is reported, not raised
                failures.append(f"email failed: {redact(str(error))[:200]}")
        webhook = _connection(WEBHOOK_CONN)
        if webhook:
            try:
                post_webhook(alert, webhook_url(webhook))
                delivered.append("webhook")
            except Exception as error:  # noqa: BLE001 - likewise for the webhook
                failures.append(f"webhook failed: {redact(str(error))[:200]}")
        return delivered, failures


class LinkageAlertNotifier(BaseNotifier):
    """`on_failure_callback=LinkageAlertNotifier(Event.TASK_FAILED)`: a failed task's alert, unless the failure
    already sent its own (validation failed, rollback failed)."""

    template_fields = ()

    def __init__(self, event: Event, find_run: Callable[[Any], str] = linkage_run_id) -> None:
        super().__init__()
        self.event, self.find_run = Event(event), find_run

    def notify(self, context: Any) -> None:
        if isinstance(context.get("exception"), (AlertedFailure, AlertedError)):
            return
        with app_session() as lk:
            if lk is None:  # the connection names another database: alert, keep nothing there
                AirflowChannel(context, None, Settings.from_env())(self.event, None)
                return
            found = lk.runs.find(self.find_run(context))
            AirflowChannel(context, lk.alerts, lk.settings)(self.event, RunRecord.model_validate(found) if found
                                                            else None)


def _send_email(alert: Alert, smtp: Any, recipients: str) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=SMTP_CONN) as hook:
        hook.send_email_smtp(to=recipients, subject=alert.subject, mime_subtype="alternative",
                             html_content=f"<pre>{alert.text()}</pre>",
                             from_email=smtp.extra_dejson.get("from_email", "linkage@localhost"))
