"""What linkage relies on, measured on every server the suite has (docs/CONTRACT.md, "Servers").

Each test is one row of that table: it asserts what linkage needs, or, where the servers
differ, that the server does one of the shapes the table names (the shape it did is kept in
the test's `record_property`, so the report of a run says which).
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import json_util
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient, UpdateOne, monitoring
from pymongo.database import Database
from pymongo.errors import BulkWriteError, CursorNotFound, OperationFailure

from linkage.core.app_schema import APP_COLLECTIONS
from linkage.core.errors import LinkageError
from linkage.dev.seed import seed
from linkage.mongo.concurrency import probe_updates
from linkage.mongo.indexes import ensure_indexes
from linkage.relations import REGISTRY
from linkage.run.lifecycle import start_run
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.backup import take_backup
from linkage.stages.executor import migrate, undo_run
from linkage.stages.indexes import create_indexes

from helpers import empty_app, snapshot

pytestmark = pytest.mark.both_servers
RAW = CodecOptions(document_class=RawBSONDocument)


def test_link_indexes_keep_link_values_unique(db: Database, record_property: Any) -> None:
    """Partial unique indexes: honoured (MongoDB), ignored (nx) or refused (FerretDB: NotImplemented); linkage's
    probe decides, and only a partial index lets `""` repeat (a sparse one indexes it too)."""
    db.users.insert_many([{"id": "u1", "customer_v2_id": "c1"}, {"id": "u2"}, {"id": "u3"}, {"id": "u4",
                                                                                         "customer_v2_id": ""}])
    outcome = {o.name: o for o in ensure_indexes(db, REGISTRY.indexes(), "index_probe")}["customer_v2_id_1"]
    record_property("link_index", outcome.status)
    assert outcome.status in ("created", "fallback_sparse")  # the data allows a sparse one: one "", no duplicate
    with pytest.raises(OperationFailure):
        db.users.insert_one({"id": "u6", "customer_v2_id": "c1"})
    if outcome.status == "created":
        db.users.insert_one({"id": "u5", "customer_v2_id": ""})
    else:
        with pytest.raises(OperationFailure):
            db.users.insert_one({"id": "u5", "customer_v2_id": ""})


def test_in_with_null_matches_missing_null_and_the_value_only(db: Database) -> None:
    db.t.insert_many([{"n": 0}, {"n": 1, "f": None}, {"n": 2, "f": ""}, {"n": 3, "f": "x"}, {"n": 4, "f": 0},
                      {"n": 5, "f": False}, {"n": 6, "f": []}])
    assert sorted(d["n"] for d in db.t.find({"f": {"$in": [None, ""]}})) == [0, 1, 2]
    assert sorted(d["n"] for d in db.t.find({"f": None})) == [0, 1]


def test_a_unique_index_refusing_one_update_of_an_unordered_bulk(db: Database, record_property: Any) -> None:
    """MongoDB and nx: a write error (11000) for that op, the others applied. FerretDB 1.24: the whole
    command fails (InternalError, code 1) and the ops after it are not applied."""
    db.z.insert_many([{"_id": i, "v": i} for i in range(4)])
    db.z.create_index("v", unique=True)
    ops = [UpdateOne({"_id": 1}, {"$set": {"w": "before"}}), UpdateOne({"_id": 0}, {"$set": {"v": 1}}),
           UpdateOne({"_id": 2}, {"$set": {"w": "after"}})]
    try:
        db.z.bulk_write(ops, ordered=False)
        raise AssertionError("a unique index let a duplicate in")
    except BulkWriteError as exc:
        shape = "write error"
        assert [(e["index"], e["code"]) for e in exc.details["writeErrors"]] == [(1, 11000)]
        assert db.z.find_one({"_id": 2})["w"] == "after"
    except OperationFailure as exc:
        shape = f"command error {exc.code}"
        assert "w" not in db.z.find_one({"_id": 2})
    record_property("shape", shape)
    assert db.z.find_one({"_id": 1})["w"] == "before" and db.z.find_one({"_id": 0})["v"] == 0


def test_a_dotted_field_name_inside_a_subdocument(db: Database, record_property: Any) -> None:
    """MongoDB (5.0+) and nx store `{"coverage": {"users.customer_v2_id": 1}}`; FerretDB 1.24 refuses it (code 2)."""
    try:
        db.t.insert_one({"_id": 1, "coverage": {"users.customer_v2_id": 1}})
        assert db.t.find_one({"_id": 1})["coverage"] == {"users.customer_v2_id": 1}
        shape = "stored"
    except OperationFailure as exc:
        shape = f"refused {exc.code}"
        assert db.t.count_documents({}) == 0
    record_property("dotted_key", shape)


def test_a_run_records_coverage_keyed_by_relation_is_stored_and_read_back_as_written(lk: Linkage,
                                                                                     db: Database) -> None:
    """Keyed `collection.field`, it is stored without dots in a field name (as a list), so every server takes
    it; the record, the report and the run list read it back as the mapping it was written as."""
    empty_app(db)
    run_id, _ = start_run(lk, MigrationParams(), "test")
    coverage = {"users.customer_v2_id": {"total": 3, "linked": 2, "ratio": 0.6667},
                "delivery_statuses.order_id": {"total": 0, "linked": 0, "ratio": 0.0}}
    lk.runs.update(run_id, coverage_before=coverage, coverage_after=coverage)
    record = lk.record(run_id)
    assert record.coverage_before == record.coverage_after == record.report().coverage_after == coverage
    assert lk.runs.recent(1)[0]["coverage_after"] == coverage


def test_a_cursor_killed_from_another_connection(wire_server: Any, db: Database, record_property: Any) -> None:
    """MongoDB and FerretDB: the next getMore raises CursorNotFound. nx answers killCursors as killed and then
    ends the cursor as if the data had ended: a pass cannot tell, so nx's kills are injected another way."""
    db.t.insert_many([{"i": i} for i in range(500)])
    cursor = db.t.find().sort("_id", 1).batch_size(100)
    seen = [next(cursor)["i"]]
    other: MongoClient = MongoClient(wire_server.uri)
    try:
        killed = other[db.name].command("killCursors", "t", cursors=[cursor.cursor_id])
    finally:
        other.close()
    assert killed["cursorsKilled"] == [cursor.cursor_id]
    try:
        seen += [d["i"] for d in cursor]
        shape = f"ended after {len(seen)}"
    except CursorNotFound:
        shape = "CursorNotFound"
    record_property("after_kill", shape)
    assert shape == "CursorNotFound" or len(seen) < 500


def test_two_clients_updating_one_document_at_once_lose_no_update(wire_server: Any, db: Database,
                                                                   request: pytest.FixtureRequest,
                                                                   record_property: Any) -> None:
    """What running beside a live app needs: an update of one document is atomic, so the app's `$set` of
    one field and linkage's of another never undo each other. FerretDB 1.24 (SQLite) reads, changes and
    rewrites the whole document without a lock and loses updates; strict, so the day it stops this fails."""
    if request.node.callspec.params["wire_server"] == "ferretdb":
        request.applymarker(pytest.mark.xfail(strict=True, reason="FerretDB 1.24 loses concurrent updates"))
    db.t.insert_one({"_id": 1, "n": 0})
    clients = [MongoClient(wire_server.uri) for _ in range(2)]

    def increments(client: MongoClient) -> None:
        for _ in range(300):
            client[db.name].t.update_one({"_id": 1}, {"$inc": {"n": 1}})

    threads = [threading.Thread(target=increments, args=(c,)) for c in clients]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for c in clients:
            c.close()
    n = db.t.find_one({"_id": 1})["n"]
    record_property("increments_kept", f"{n} of 600")
    assert n == 600


def test_a_server_that_loses_concurrent_updates_gets_no_write_unless_the_app_is_quiet(
        lk: Linkage, db: Database, request: pytest.FixtureRequest, record_property: Any) -> None:
    """The row above, handled by behaviour: each write run (and each rollback) probes the server first and
    keeps the probe in its record. Where an update was lost (FerretDB), a run is refused with one line and
    writes nothing to the app, unless a person says the app is not writing; where none was, it writes."""
    seed(db, customers=40, seed_value=5)
    before = snapshot(db)
    loud = Linkage(lk.settings.model_copy(update={"app_quiet": False}), lk.client)
    probe = probe_updates(db.probe_scratch)
    record_property("probe", f"{probe.kept} of {probe.sent} kept")
    assert (probe.lost > 0) == (request.node.callspec.params["wire_server"] == "ferretdb")
    params = MigrationParams(min_user_coverage=0, min_order_coverage=0)
    if probe.lost:
        with pytest.raises(LinkageError, match=r"^refusing run .*: this server lost \d+ of 100 updates .*"
                                               r"LINKAGE_APP_QUIET=true"):
            migrate(loud, params, "test", new=True)
        refused = loud.runs.coll.find_one({}, sort=[("created_at", -1)])
        assert refused["state"] == "failed" and refused["preflight"]["concurrent_updates"]["kept"] < 100
        assert snapshot(db) == before
        quiet = Linkage(lk.settings.model_copy(update={"app_quiet": True}), lk.client)
        report = migrate(quiet, params, "test", new=True)
        assert report.state == "succeeded"
        with pytest.raises(LinkageError, match=r"^refusing the rollback of "):
            undo_run(loud, report.run_id)
        undo_run(quiet, report.run_id)
    else:
        report = migrate(loud, params, "test", new=True)
        assert report.state == "succeeded"
        kept = loud.runs.coll.find_one({"_id": report.run_id})["preflight"]["concurrent_updates"]
        assert kept == {"sent": 100, "kept": 100, "app_quiet": False}
        probes = ProbeUpdates(lk.settings.collection("update_probe"))
        watched: MongoClient = MongoClient(lk.settings.mongo_uri, event_listeners=[probes])
        try:
            undo_run(Linkage(loud.settings, watched), report.run_id)
        finally:
            watched.close()
        assert probes.sent == 100  # one probe for the rollback, not one for each check on its way
    assert snapshot(db) == before


class ProbeUpdates(monitoring.CommandListener):
    """The updates sent to the probe's scratch collection."""

    def __init__(self, collection: str) -> None:
        self.collection, self.sent = collection, 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "update" and event.command.get("update") == self.collection:
            self.sent += len(event.command.get("updates", []))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_sorting_by_a_string_key_returns_every_document_once_ties_together(db: Database) -> None:
    db.t.insert_many([{"k": k, "n": n} for n, k in enumerate("bacbabcab" * 20)])
    got = list(db.t.find({"k": {"$type": "string"}}).sort("k", 1).batch_size(7))
    assert [d["k"] for d in got] == sorted(d["k"] for d in got)
    assert sorted(d["n"] for d in got) == list(range(180))


def test_index_listing_gives_the_keys_linkage_compares(db: Database, record_property: Any) -> None:
    """Listing differs (nx: no flags, other names, no `{id: 1}` at all; FerretDB: `unique` but not `sparse`);
    linkage compares keys only, so an index it cannot see is created again (a no-op) and reported `created`."""
    db.users.insert_one({"id": "u1"})
    first = {o.name: o.status for o in ensure_indexes(db, REGISTRY.indexes(), "index_probe")}
    listed = {tuple(i["key"].items()): i for i in db.users.list_indexes()}
    link = listed[(("customer_v2_id", 1),)]
    record_property("flags", sorted(k for k in ("unique", "sparse", "partialFilterExpression") if k in link))
    assert set(first.values()) <= {"created", "fallback_sparse", "fallback_plain"}
    again = {o.name: o.status for o in ensure_indexes(db, REGISTRY.indexes(), "index_probe")}
    record_property("not_listed", sorted(name for name, status in again.items() if status != "exists"))
    assert again["customer_v2_id_1"] == again["customer_id_1_delivery_date_1"] == "exists"


def test_coll_stats_counts_the_documents_and_reports_a_size(db: Database) -> None:
    db.t.insert_many([{"i": i, "pad": "x" * 100} for i in range(300)])
    stats = db.command("collStats", "t")
    assert stats["count"] == 300 and isinstance(stats["size"], int | float) and stats["size"] > 0


def test_a_backup_restores_with_nothing_but_bson_into_fresh_ferretdb_byte_for_byte(
        lk: Linkage, db: Database, ferretdb_server: Any, record_property: Any) -> None:
    """The stock-restore fallback (mongorestore is not to be had): gunzip, bson.decode_file_iter and json_util
    read every file of a backup into a fresh FerretDB database; the server takes every index the metadata
    names; every document is then the same BSON bytes as before the backup. No code of linkage reads it."""
    seed(db, customers=120, seed_value=4)
    run_id, _ = start_run(lk, MigrationParams(), "test")
    with lk.hold(run_id):
        create_indexes(lk, run_id)  # so the metadata carries the link indexes
    before = {name: [d.raw for d in db.get_collection(name, codec_options=RAW).find().sort("_id", 1)]
              for name in APP_COLLECTIONS}
    root = Path(take_backup(lk, run_id).path) / db.name
    target_client: MongoClient = MongoClient(ferretdb_server.uri)
    target = target_client[f"{db.name}_restored"]
    target_client.drop_database(target.name)
    try:
        restored: dict[str, list[bytes]] = {}
        for data in sorted(root.glob("*.bson.gz")):
            name = data.name.removesuffix(".bson.gz")
            with gzip.open(data, "rb") as stream:
                docs = list(bson.decode_file_iter(stream, codec_options=RAW))
            target.get_collection(name, codec_options=RAW).insert_many(docs)
            meta = json_util.loads(gzip.decompress((root / f"{name}.metadata.json.gz").read_bytes()))
            for index in meta["indexes"]:
                if index["name"] != "_id_":
                    options = {k: index[k] for k in ("unique", "sparse", "partialFilterExpression") if k in index}
                    target[name].create_index(list(index["key"].items()), name=index["name"], **options)
            restored[name] = [d.raw for d in target.get_collection(name, codec_options=RAW).find().sort("_id", 1)]
            assert {tuple(i["key"].items()) for i in target[name].list_indexes()} == \
                {tuple(i["key"].items()) for i in meta["indexes"]}, name
        record_property("collections", sorted(restored))
        assert restored and all(restored[name] == before[name] for name in restored)
    finally:
        target_client.drop_database(target.name)
        target_client.close()
