"""Alerts for the people on call: what happened, where, and what to look at.

An alert names the DAG, the Airflow run, the linkage run, the failing
expectations with their observed values, the counts and the link to the task
log. It is built from the run record and passed through `redact` as a whole,
so no credential, phone or email can reach a mailbox or a chat channel.
Delivery (Airflow's SMTP connection, a webhook) is the notifier's job; the
webhook sender lives here because it needs nothing from Airflow.
"""

from __future__ import annotations

import json
import urllib.request
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from linkage.masking import redact

COUNT_KEYS = ["linked", "ambiguous", "conflict", "unmatched", "invalid", "already_linked", "dangling", "one_sided"]


class Event(StrEnum):
    VALIDATION_FAILED = "validation_failed"
    TASK_FAILED = "task_failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


HEADLINES = {
    Event.VALIDATION_FAILED: "validation failed",
    Event.TASK_FAILED: "a task failed",
    Event.ROLLED_BACK: "run rolled back",
    Event.ROLLBACK_FAILED: "ROLLBACK FAILED: data may be half-migrated",
}
WHAT_TO_DO = {
    Event.VALIDATION_FAILED: "The run was rolled back if rollback_on_failure was set. Check the failing expectations "
                             "and the review items (`linkage status`), fix the cause, then trigger a new run.",
    Event.TASK_FAILED: "Read the task log. Fix the cause (database reachable? lock held?) and clear the failed task: "
                       "it resumes from the journal. `linkage status` shows the run and the lock.",
    Event.ROLLED_BACK: "Nothing to undo: the run's writes were reverted (the app's later writes were kept).",
    Event.ROLLBACK_FAILED: "Clear the rollback task or run `linkage rollback --run-id <run>`: rollback is idempotent. "
                           "Until then the run's links are partly in place.",
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
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    data_docs: str | None = None

    @classmethod
    def from_run(cls, event: Event, run: dict[str, Any] | None, **where: Any) -> "Alert":
        """Build from the linkage run record (if any) and where it happened in Airflow."""
        run = run or {}
        validation = run.get("validation") or {}
        failing = [{k: e.get(k) for k in ("name", "description", "observed", "threshold", "examples")}
                   for e in validation.get("expectations", []) if not e.get("success")]
        counts = {step: {k: data.get("counts", {}).get(k, 0) for k in COUNT_KEYS}
                  for step, data in run.get("steps", {}).items()}
        return cls(event=event, run_id=run.get("_id"), reason=run.get("error"), failing=failing, counts=counts,
                   data_docs=validation.get("data_docs"), **where)

    @property
    def subject(self) -> str:
        return redact(f"[linkage] {HEADLINES[self.event]}: {self.dag_id or 'cli'} run {self.run_id or self.dag_run_id}")

    def text(self) -> str:
        lines = [self.subject, "",
                 f"DAG: {self.dag_id}  Airflow run: {self.dag_run_id}  task: {self.task_id}",
                 f"linkage run: {self.run_id}"]
        if self.reason:
            lines.append(f"reason: {self.reason}")
        if self.failing:
            lines.append("failing expectations:")
            lines += [f"  - {f['name']}: observed {f['observed']}, expected {f['threshold']} ({f['description']})"
                      + (f"; e.g. {', '.join(f['examples'][:3])}" if f.get("examples") else "") for f in self.failing]
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
        return response.status
