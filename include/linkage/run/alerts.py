"""Alerts for the people on call: what happened, where, and what to do.

An alert names the DAG, the Airflow run, the linkage run, the failing
expectations with their observed values (or the drift found), the counts and
the links to the task log and the run's Data Docs. It is built from the run
record and passed through `redact` as a whole, so no credential, phone or email
can reach a mailbox or a chat channel. Every alert is logged (at ERROR when a
run failed or was rolled back, at WARNING for the drift of a kept run) and kept
in `<prefix>alerts` with the channels it reached; delivery by email belongs to
the Airflow notifier, the webhook sender lives here because it needs nothing
from Airflow.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pymongo import DESCENDING
from pymongo.collection import Collection

from linkage.core.clock import Clock, utc_now
from linkage.core.mask import redact
from linkage.core.models import COUNT_KEYS
from linkage.run.events import Event
from linkage.run.record import RunRecord

log = logging.getLogger("linkage.run.alerts")


HEADLINES = {
    Event.VALIDATION_FAILED: "validation failed",
    Event.TASK_FAILED: "a task failed",
    Event.ROLLED_BACK: "run rolled back",
    Event.ROLLBACK_FAILED: "ROLLBACK FAILED: data may be half-migrated",
    Event.DRIFT_FOUND: "new drift found (the run was kept)",
    Event.DRIFT_REMINDER: "drift still open (reminder)",
}
#: The log level of an alert: ERROR is for runs that failed or were rolled back; a kept run's drift warns.
LEVELS = {Event.DRIFT_FOUND: logging.WARNING, Event.DRIFT_REMINDER: logging.WARNING}
WHAT_TO_DO = {
    Event.VALIDATION_FAILED: "A document this run wrote broke an expectation, or coverage is below the threshold. "
                             "The run was rolled back if rollback_on_failure was set. Check the failing expectations "
                             "and the run's Data Docs, fix the cause, then trigger a new run.",
    Event.TASK_FAILED: "Read the task log. Fix the cause (database reachable? lock held? backup directory?) and clear "
                       "the failed task: it resumes from the journal. `linkage status` shows the run and the lock.",
    Event.ROLLED_BACK: "Nothing to undo: the run's writes were reverted (the app's later writes were kept).",
    Event.ROLLBACK_FAILED: "Clear the rollback task or run `linkage rollback --run-id <run>`: rollback is idempotent. "
                           "Until then the run's links are partly in place.",
    Event.DRIFT_FOUND: "Nothing to undo: the run's own writes are sound and were kept. The data holds violations the "
                       "run did not cause (app deletes, links the app wrote): they are open review items "
                       "(Linkage view or `linkage status`); fix them in the app or by hand. Drift that is only "
                       "still open does not page again: a reminder comes every LINKAGE_DRIFT_REMINDER_DAYS.",
    Event.DRIFT_REMINDER: "Nothing new: this drift was already reported and is still open. Clear the review "
                          "queue (Linkage view, `linkage review --csv`) or fix the data in the app.",
}


class Alert(BaseModel):
    event: Event
    dag_id: str | None = None
    dag_run_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    log_url: str | None = None
    reason: str | None = None
    failing: list[dict[str, Any]] = Field(default_factory=list)
    drift: list[dict[str, Any]] = Field(default_factory=list)
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    data_docs: str | None = None
    #: Why a kept run's drift paged (or reminded), and the documents new in violation, with examples.
    paging: str | None = None
    new_drift: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def from_run(cls, event: Event, run: RunRecord | None, **where: Any) -> Alert:
        """Build from the linkage run record (if any) and where it happened."""
        if run is None:
            return cls(event=event, **where)
        expectations = run.validation.expectations if run.validation else []
        failing = [e.model_dump(include={"name", "description", "observed", "threshold", "examples"})
                   for e in expectations if not e.success]
        drift = [{"name": e.name, "description": e.description, "drift": e.drift, "examples": e.drift_examples}
                 for e in expectations if e.drift]
        counts = {step: {k: c.get(k, 0) for k in COUNT_KEYS} for step, c in run.counts().items()}
        where.setdefault("data_docs", run.validation.data_docs if run.validation else None)
        drift_record = run.drift
        new = [{"name": name, "new": n, "examples": drift_record.new_examples.get(name, [])}
               for name, n in drift_record.new.items()] if drift_record else []
        return cls(event=event, run_id=run.id, reason=run.error, failing=failing, drift=drift, counts=counts,
                   paging=run.paging.why if run.paging else None, new_drift=new, **where)

    @property
    def subject(self) -> str:
        return redact(f"[linkage] {HEADLINES[self.event]}: {self.dag_id or 'cli'} run {self.run_id or self.dag_run_id}")

    def text(self) -> str:
        where = "  ".join(f"{label}: {value}" for label, value in
                          (("DAG", self.dag_id), ("Airflow run", self.dag_run_id), ("task", self.task_id)) if value)
        lines = [self.subject, "", *([where] if where else []), f"linkage run: {self.run_id}"]
        if self.reason:
            lines.append(f"reason: {self.reason}")
        if self.failing and self.event not in (Event.DRIFT_FOUND, Event.DRIFT_REMINDER):
            lines.append("failing expectations:")
            lines += [f"  - {f['name']}: observed {f['observed']}, expected {f['threshold']} ({f['description']})"
                      + (f"; e.g. {', '.join(f['examples'][:3])}" if f.get("examples") else "") for f in self.failing]
        undone = self.event in (Event.ROLLED_BACK, Event.ROLLBACK_FAILED)
        if self.paging and not undone:  # why tonight's drift paged or not: the run's own night, not its rollback
            lines.append(self.paging)
        if self.new_drift:
            lines.append("new tonight (not in violation before this run):")
            lines += [f"  - {d['name']}: +{d['new']}" + (f"; e.g. {', '.join(d['examples'][:3])}" if d["examples"]
                                                          else "") for d in self.new_drift]
        if self.drift:
            lines.append("drift the run found beside its own writes (not caused by it; `linkage validate` judges "
                         "the data as the rollback left it):" if undone else
                         "drift open (not caused by this run):" if self.paging else
                         "drift found (not caused by this run):")
            lines += [f"  - {d['name']}: {d['drift']} ({d['description']})"
                      + (f"; e.g. {', '.join(d['examples'][:3])}" if d.get("examples") else "") for d in self.drift]
        for step, counts in self.counts.items():
            lines.append(f"counts {step}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        if self.log_url:
            lines.append(f"task log: {self.log_url}")
        if self.data_docs:
            lines.append(f"data docs: {self.data_docs}")
        lines += ["", f"what to do: {WHAT_TO_DO[self.event]}"]
        return redact("\n".join(lines))

    def webhook_payload(self) -> dict[str, Any]:
        """Slack-compatible (`text`), with the structured fields beside it for other receivers."""
        return {"text": self.text(), "linkage": json.loads(redact(self.model_dump_json()))}


def post_webhook(alert: Alert, url: str, timeout: float = 10.0) -> int:
    """POST the alert as JSON; returns the HTTP status (raises on connection errors)."""
    request = urllib.request.Request(url, data=json.dumps(alert.webhook_payload()).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (URL from an Airflow connection)
        return int(response.status)


def log_alert(alert: Alert, undelivered: str | None = None) -> None:
    """The alert in the log, at its level; `undelivered` says why no channel beyond the log took it."""
    level = LEVELS.get(alert.event, logging.ERROR)
    log.log(level, "ALERT %s%s", _drift_count(alert), alert.text())
    if undelivered:
        log.log(level, "ALERT NOT DELIVERED beyond the log: %s", undelivered)


def _drift_count(alert: Alert) -> str:
    """What a drift alert's log line leads with: the new items first (what paged), then what is open."""
    if alert.event not in (Event.DRIFT_FOUND, Event.DRIFT_REMINDER):
        return ""
    new, total = sum(int(d["new"]) for d in alert.new_drift), sum(int(d["drift"]) for d in alert.drift)
    return f"+{new} new, {total} open drift items: " if new else f"{total} open drift items: " if total else ""


class AlertStore:
    """`<prefix>alerts`: every alert raised, with where it was delivered."""

    def __init__(self, collection: Collection, clock: Clock = utc_now) -> None:
        self.coll, self.clock = collection, clock

    def record(self, alert: Alert, delivered: list[str], undelivered: str | None = None) -> None:
        """Log the alert at its level and keep it; `undelivered` says why no channel beyond the log took it."""
        log_alert(alert, undelivered)
        self.coll.insert_one({
            **alert.model_dump(mode="json", include={"event", "dag_id", "dag_run_id", "task_id", "run_id"}),
            "subject": alert.subject, "delivered": delivered, "undelivered": undelivered,
            "at": self.clock()})

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(self.coll.find({}, {"_id": 0}).sort("at", DESCENDING).limit(limit))


class LogChannel:
    """The CLI's channel, and every run's last resort: the alert logged and kept in `linkage_alerts`.

    Data Docs are named by their path on this machine (where the person who ran the CLI opens them).
    """

    def __init__(self, store: AlertStore, docs_dir: Path) -> None:
        self.store, self.docs_dir = store, docs_dir

    def __call__(self, event: Event, run: RunRecord) -> None:
        where = {"data_docs": str(self.docs_dir / run.validation.data_docs)} \
            if run.validation and run.validation.data_docs else {}
        self.store.record(Alert.from_run(event, run, **where), ["log"])
