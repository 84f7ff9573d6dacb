"""Durable bookkeeping whatever the URI says (CONTRACT §5): every `linkage_*` command carries majority and
journaled writes and majority reads, a write-concern error fails the batch instead of counting as done, and a
URI asking for unacknowledged writes is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import WriteConcernError

from linkage.core.errors import LinkageError
from linkage.core.settings import Settings
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate

from faults import WRITE_CONCERN_ERROR, Command, FaultProxy
from helpers import run_cli, snapshot

WRITES = {"insert", "update", "delete", "findAndModify"}
READS = {"find", "aggregate", "count", "distinct"}


def _through(settings: Settings, proxy: FaultProxy, options: str = "") -> Settings:
    return settings.model_copy(update={"mongo_uri": proxy.uri + options})


def _bookkeeping(command: Command, settings: Settings) -> bool:
    """A command on a `linkage_*` collection that holds state (a server probe's scratch collection does not)."""
    name = command.collection
    return isinstance(name, str) and name.startswith(settings.prefix) and not name.endswith("_probe")


@pytest.mark.both_servers
def test_every_bookkeeping_command_carries_majority_whatever_the_uri_says(
        settings: Settings, seeded: dict[str, Any], wire_server: Any) -> None:
    with FaultProxy(wire_server.uri) as proxy:
        given = _through(settings, proxy, "&w=1&readPreference=secondaryPreferred")
        lk = Linkage(given)
        try:
            report = migrate(lk, MigrationParams(), "test")
        finally:
            lk.close()
    assert report.state == "succeeded", report.error
    ours = [c for c in proxy.commands if _bookkeeping(c, settings)]
    written = [c for c in ours if c.name in WRITES]
    read = [c for c in ours if c.name in READS]
    assert {c.collection.removeprefix(settings.prefix) for c in written} >= {"runs", "journal", "lock", "review"}
    for command in written:
        assert command.body.get("writeConcern") == {"w": "majority", "j": True, "wtimeout": 30_000}, command
    for command in read:
        assert command.body.get("readConcern") == {"level": "majority"}, command
        assert command.body.get("$readPreference", {"mode": "primary"}) == {"mode": "primary"}, command
    app_writes = [c for c in proxy.commands if c.name == "update" and c.collection in ("delivery_statuses", "users")]
    assert app_writes and all(c.body.get("writeConcern") == {"w": 1} for c in app_writes)  # the URI's, as given


def test_a_write_concern_error_on_the_journal_fails_the_batch_and_a_resume_ends_as_an_uninterrupted_run(
        settings: Settings, seeded: dict[str, Any], wire_server: Any, client: MongoClient, db: Database,
        tmp_path: Path) -> None:
    with FaultProxy(wire_server.uri) as proxy:
        rule = proxy.spoil(lambda c: c.name == "update" and c.collection == settings.collection("journal")
                           and "pending" in repr(c.body.get("updates")), WRITE_CONCERN_ERROR)
        lk = Linkage(_through(settings, proxy))
        try:
            with pytest.raises((LinkageError, WriteConcernError), match="replication|durable"):
                migrate(lk, MigrationParams(), "test")
            run_id = lk.runs.recent()[0]["_id"]
            assert lk.record(run_id).state == "failed"
        finally:
            lk.close()
    assert rule.hits, "the fault was never injected"
    journal = client[settings.db][settings.collection("journal")]
    assert journal.count_documents({"run_id": run_id, "state": "applied", "writes.0": {"$exists": True}}) == 0
    resumed = migrate(Linkage(settings, client), MigrationParams(), "test")
    assert resumed.run_id == run_id and resumed.state == "succeeded"
    after_resume = snapshot(db)

    other = settings.model_copy(update={"db": settings.db + "_clean"})
    try:
        from linkage.dev.seed import seed

        seed(client[other.db], customers=600, seed_value=11)
        clean = migrate(Linkage(other, client), MigrationParams(), "test")
        assert clean.steps == resumed.steps
        assert snapshot(client[other.db]).keys() == after_resume.keys()
    finally:
        client.drop_database(other.db)


def test_a_uri_asking_for_unacknowledged_writes_is_refused_in_one_line(settings: Settings, seeded: dict) -> None:
    done = run_cli(settings.model_copy(update={"mongo_uri": settings.mongo_uri.rstrip("/") + "/?w=0"}), "status")
    assert done.returncode != 0
    assert "w=0" in done.stderr and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_status_and_preflight_report_the_topology_and_the_concerns(lk: Linkage, seeded: dict) -> None:
    report = migrate(lk, MigrationParams(), "test")
    concerns = lk.runs.find(report.run_id)["preflight"]["concerns"]
    assert concerns["bookkeeping"] == {"write_concern": "j=True, w=majority, wtimeout=30000",
                                       "read_preference": "Primary", "read_concern": "majority"}
    assert concerns["topology"] in ("Single", "ReplicaSetWithPrimary", "Sharded")


def test_an_election_refusing_writes_for_20_s_is_ridden_out_and_the_run_ends_as_an_uninterrupted_one(
        settings: Settings, seeded: dict[str, Any], wire_server: Any, client: MongoClient, db: Database) -> None:
    with FaultProxy(wire_server.uri) as proxy:
        lk = Linkage(_through(settings, proxy).model_copy(update={"lock_ttl_seconds": 120}))
        started: list[float] = []

        def in_the_apply_stage(command: Command) -> bool:
            """Every write, from the first batch the apply stage marks pending on."""
            if not started and command.collection == settings.collection("journal") and \
                    "pending" in repr(command.body.get("updates")):
                started.append(1)
            return bool(started) and command.name in WRITES

        proxy.elect(in_the_apply_stage, seconds=20)
        try:
            report = migrate(lk, MigrationParams(), "test")
        finally:
            lk.close()
    refused = proxy.rules[0].hits
    assert report.state == "succeeded", report.error
    assert len(refused) >= 3 and {c.collection for c in refused} >= {settings.collection("journal")}
    other = settings.model_copy(update={"db": settings.db + "_calm"})
    try:
        from linkage.dev.seed import seed

        seed(client[other.db], customers=600, seed_value=11)
        calm = migrate(Linkage(other, client), MigrationParams(), "test")
        assert calm.steps == report.steps
        assert _links(client[other.db]) == _links(db)
    finally:
        client.drop_database(other.db)


def _links(db: Database) -> dict[str, dict[str, Any]]:
    """Every document's link field by its application id (the two databases' `_id`s differ)."""
    fields = {"delivery_statuses": "order_id", "users": "customer_v2_id", "customers_v2": "user_id"}
    return {name: {d.get("id"): d.get(field) for d in db[name].find({}, {"id": 1, field: 1})}
            for name, field in fields.items()}


def test_a_collection_sharded_on_another_key_is_refused_before_anything_is_written(
        settings: Settings, seeded: dict[str, Any], client: MongoClient, db: Database) -> None:
    """What mongos's catalog says of a sharded `users` (its shard key in `config.collections`), as it would say
    it: the unique link index on `customer_v2_id` cannot start with `_id`, so the run refuses in preflight."""
    catalog = client["config"]["collections"]
    catalog.insert_one({"_id": f"{db.name}.users", "key": {"_id": "hashed"}})
    try:
        before = snapshot(db)
        done = run_cli(settings, "migrate")
        assert done.returncode != 0
        assert "users customer_v2_id_1 (sharded on {'_id': 'hashed'})" in done.stderr
        assert "Nothing was written" in done.stderr and "Traceback" not in done.stderr
        assert snapshot(db) == before and db[settings.collection("journal")].count_documents({}) == 0
    finally:
        catalog.delete_one({"_id": f"{db.name}.users"})
