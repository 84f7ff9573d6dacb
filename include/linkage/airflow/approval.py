"""Four eyes on people's decisions: `linkage_apply_decisions` asks a second person before it writes.

`request_approval` counts what the run is about to do (links, no-match, clears, the stale ones, who
decided) into the run record and into the request's text; `DecisionsApproval` is Airflow's
`ApprovalOperator`: the request waits in Browse -> Required Actions for one of `LINKAGE_APPROVERS`
(any user Airflow lets respond, when none are set) and, after `LINKAGE_APPROVAL_TIMEOUT_HOURS`,
rejects by default. Four eyes: the request says, per decider, that anyone but that person may
approve; an approval approves the decisions of people other than the approver only (theirs stay
pending, saying so, for someone else: `linkage.stages.approval.approve`). It records its own answer in the
linkage run: approved, the run goes on to take its lease and write what was approved; rejected (or
timed out), the others' decisions become `rejected`, their items go back to the queue, the run closes
`rejected` and every later task skips, having written nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import get_current_context, task
from airflow.sdk.exceptions import DownstreamTasksSkipped

from linkage.airflow.connection import session
from linkage.airflow.context import linkage_run_id, skip
from linkage.airflow.urls import PREFIX, page_link
from linkage.core.people import person
from linkage.core.settings import Settings
from linkage.core.words import plural
from linkage.run.record_parts import DecisionsPreview
from linkage.stages.approval import approve, preview

REQUEST = "request_approval"


def who_may_approve(shown: DecisionsPreview) -> str:
    """Per decider, how many decisions and who may approve them: anyone but the decider (four eyes)."""
    lines = [f"- {name}: {plural(n, 'decision')}, may be approved by anyone but **{person(name)}**"
             for name, n in shown.deciders.items()]
    if shown.approved:
        lines.append(f"- of these, {shown.approved} approved already by a second person")
    return "\n".join(lines) or "- nobody"


def approval_text(shown: DecisionsPreview, run_id: str, db: str) -> str:
    """The request a person approves (Markdown): counts and deciders only, never a document's data."""
    return (f"**{plural(shown.total, 'decision')}** on the review queue of database `{db}`, made before run "
            f"`{run_id}` started:\n\n- {plural(shown.links, 'link')} to write\n"
            f"- {plural(shown.none, 'no-match decision')} (left unlinked, the item stays closed)\n"
            f"- {plural(shown.clears, 'dangling reference')} to clear\n"
            f"- {shown.stale} stale: their document changed since, so they will not be written\n\n"
            f"Decided by (your approval writes only the decisions of people other than you: your own stay pending "
            f"for someone else):\n\n{who_may_approve(shown)}\n\n"
            f"[The decided items in the Linkage view]({page_link(f'{PREFIX}/?status=decided')}#review)\n\n"
            "**Approve**: the run takes a backup of the documents it will change, then journals, writes and "
            "validates them (and can be rolled back). **Reject**: nothing is written; the decisions are marked "
            "rejected and their items return to the queue.")


@task(task_id=REQUEST, doc_md="Counts what the run is about to do with people's decisions (links, no-match, "
                              "clears, stale ones, who decided) for the approval request; writes nothing.")
def request_approval() -> str:
    context = get_current_context()
    run_id = linkage_run_id(context)
    with session() as lk:
        return approval_text(preview(lk, run_id), run_id, lk.settings.db)


def _responder(event: dict[str, Any]) -> str | None:
    user = event.get("responded_by_user")
    return (user.get("name") or user.get("id")) if isinstance(user, dict) else None


class DecisionsApproval(ApprovalOperator):
    """The `ApprovalOperator` that records its answer in the linkage run (see the module docstring)."""

    def execute(self, context: Any) -> Any:
        if context["params"].get("dry_run"):
            skip("dry run: it writes nothing, so it needs no approval")
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        try:
            result = super().execute_complete(context, event)
        except DownstreamTasksSkipped:  # a rejection (or the timeout's default) skips what follows by raising
            self._record(context, event, approved=False)
            raise
        self._record(context, event, approved=result["chosen_options"] == [self.APPROVE])
        return result

    @staticmethod
    def _record(context: Any, event: dict[str, Any], *, approved: bool) -> None:
        with session() as lk:
            approve(lk, linkage_run_id(context), approved=approved, by=_responder(event), via="airflow")


def approval(settings: Settings) -> DecisionsApproval:
    """The approval task, for the users and timeout the settings name."""
    users = [{"id": name.strip(), "name": name.strip()} for name in (settings.approvers or "").split(",")
             if name.strip()]
    return DecisionsApproval(
        task_id="approve", subject="Apply people's review decisions to the app database?",
        body="{{ ti.xcom_pull(task_ids='" + REQUEST + "') }}", defaults=ApprovalOperator.REJECT,
        assigned_users=users or None, response_timeout=timedelta(hours=settings.approval_timeout_hours),
        doc_md="Waits in Browse -> Required Actions for a second person; the timeout rejects.")
