"""Airflow notifier for linkage alerts: email, webhook, and always the log and run record.

Email goes through Airflow's SMTP connection (`smtp_default`, recipients in its
extra `to` or LINKAGE_ALERT_EMAILS); the webhook (Slack-compatible JSON) through
the HTTP connection `linkage_webhook` when it exists. With neither configured
the alert still reaches the task log and `linkage_alerts`: it is never lost.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowNotFoundException

from linkage import orchestration
from linkage.alerts import Alert, Event, post_webhook

log = logging.getLogger("linkage.alerts")


def _connection(conn_id: str) -> Any | None:
    from airflow.sdk import Connection

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


class LinkageAlertNotifier(BaseNotifier):
    """`on_failure_callback=LinkageAlertNotifier(Event.TASK_FAILED)` and friends."""

    template_fields = ()

    def __init__(self, event: Event, smtp_conn_id: str = "smtp_default", webhook_conn_id: str = "linkage_webhook") -> None:
        super().__init__()
        self.event, self.smtp_conn_id, self.webhook_conn_id = Event(event), smtp_conn_id, webhook_conn_id

    def build(self, context: dict[str, Any]) -> Alert:
        ti = context["ti"]
        run_id = ti.xcom_pull(task_ids="preflight") or ti.xcom_pull(task_ids="check_run")
        run = None
        if run_id:
            with orchestration.session() as lk:
                run = lk.runs.coll.find_one({"_id": run_id})
        return Alert.from_run(self.event, run, dag_id=context["dag"].dag_id, dag_run_id=context["run_id"],
                              task_id=ti.task_id, log_url=getattr(ti, "log_url", None))

    def notify(self, context: dict[str, Any]) -> None:
        alert = self.build(context)
        log.warning("ALERT %s", alert.text())
        delivered = ["log"]
        smtp = _connection(self.smtp_conn_id)
        recipients = (smtp.extra_dejson.get("to") if smtp else None) or os.environ.get("LINKAGE_ALERT_EMAILS")
        if smtp and recipients:
            from airflow.providers.smtp.hooks.smtp import SmtpHook

            with SmtpHook(smtp_conn_id=self.smtp_conn_id) as hook:
                hook.send_email_smtp(to=recipients, subject=alert.subject, mime_subtype="alternative",
                                     html_content=f"<pre>{alert.text()}</pre>",
                                     from_email=smtp.extra_dejson.get("from_email", "linkage@localhost"))
            delivered.append("email")
        webhook = _connection(self.webhook_conn_id)
        if webhook:
            post_webhook(alert, webhook_url(webhook))
            delivered.append("webhook")
        with orchestration.session() as lk:
            lk.db[lk.settings.collection("alerts")].insert_one({
                **alert.model_dump(mode="json", include={"event", "dag_id", "dag_run_id", "task_id", "run_id"}),
                "subject": alert.subject, "delivered": delivered, "at": datetime.now(timezone.utc)})


def webhook_url(conn: Any) -> str:
    """A full URL in the connection's host, or scheme (schema), host, port and extra `path`."""
    if conn.host.startswith(("http://", "https://")):
        return conn.host
    scheme = conn.schema if conn.schema in ("http", "https") else "https"
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{conn.host}{port}{conn.extra_dejson.get('path', '')}"
