"""The least-privilege role (docs/RUNBOOK.md §7) grants every action linkage's commands take.

The servers here run without authentication, so a missing privilege would first show on a
production MongoDB, as `not authorized` in the middle of a night. Instead, every command a
season of work sends (a migration, a reconcile, a person's decision applied, a rollback, a
validation, the housekeeping each run ends with) is recorded, mapped to the action MongoDB
checks for it, and must be granted by the role; a command the mapping does not know fails.
"""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient, monitoring
from pymongo.database import Database

from linkage.core.models import RunKind, RunState
from linkage.core.settings import Settings
from linkage.dev.seed import seed
from linkage.review.intake import DecisionInput, record_decisions
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate, undo_run
from linkage.validation.metrics import measure

from helpers import RUNBOOK_ROLE, privileges

#: The actions MongoDB checks for each command on a collection (its name is the command's value).
ACTIONS: dict[str, tuple[str, ...]] = {
    "find": ("find",), "aggregate": ("find",), "count": ("find",), "distinct": ("find",),
    "insert": ("insert",), "delete": ("remove",), "createIndexes": ("createIndex",),
    "listIndexes": ("listIndexes",), "collStats": ("collStats",), "drop": ("dropCollection",),
    "create": ("createCollection",),
}
#: Commands that need no privilege on a collection of the app's database (or are checked as their cursor's read).
UNCHECKED = {"hello", "isMaster", "ismaster", "buildInfo", "ping", "endSessions", "getMore", "killCursors",
             "listDatabases"}


class Commands(monitoring.CommandListener):
    """(collection, action) for every command sent to one database; unknown commands, by name."""

    def __init__(self, db: str) -> None:
        self.db, self.needed, self.unknown = db, set[tuple[str, str]](), set[str]()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name, command = event.command_name, event.command
        if name in UNCHECKED or event.database_name != self.db:
            return
        if name == "listCollections":
            self.needed.add(("", "listCollections"))
        elif name == "update":
            upserts = any(u.get("upsert") for u in command.get("updates", []))
            self.needed.update((command[name], a) for a in ("update", *(("insert",) if upserts else ())))
        elif name == "findAndModify":
            actions = ("find", "remove") if command.get("remove") else ("find", "update")
            self.needed.update((command[name], a) for a in (*actions, *(("insert",) if command.get("upsert") else ())))
        elif name in ACTIONS:
            self.needed.update((command[name], a) for a in ACTIONS[name])
        else:
            self.unknown.add(name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def season(lk: Linkage, db: Database) -> None:
    """What the role must carry: every kind of run, a decision, a rollback, a validation."""
    first = migrate(lk, MigrationParams(), "test")
    assert first.state == RunState.SUCCEEDED
    assert migrate(lk, MigrationParams(), "test", kind=RunKind.RECONCILE, new=True).state == RunState.SUCCEEDED
    item = lk.reviews.coll.find_one({"status": "open", "category": "unmatched"})
    assert item is not None
    record_decisions(lk, [DecisionInput(line=1, item_id=item["_id"], decision="none")], by="airflow:alice", via="api")
    applied = migrate(lk, MigrationParams(), "test", kind=RunKind.DECISIONS, new=True)  # "test" approves alice's
    assert applied.state == RunState.SUCCEEDED and applied.decisions and applied.decisions.outcome == {"applied": 1}
    undo_run(lk, first.run_id)
    measure(lk.db)


def test_the_role_grants_every_action_a_season_of_runs_takes(wire_server: Any, settings: Settings,
                                                             db: Database) -> None:
    seed(db, customers=150, seed_value=3)
    commands = Commands(db.name)
    client: MongoClient = MongoClient(wire_server.uri, event_listeners=[commands])
    try:
        season(Linkage(settings, client), db)
    finally:
        client.close()
    granted = {(coll, action) for coll, actions in privileges(RUNBOOK_ROLE) for action in actions}
    assert commands.unknown == set(), "commands this test cannot map to an action"
    assert sorted(commands.needed - granted) == [], sorted(commands.needed - granted)
    # and the season did reach the bookkeeping a role is easy to forget
    assert {("linkage_update_probe", "update"), ("linkage_wanted_keys", "insert"),
            ("linkage_paging", "update")} <= commands.needed
