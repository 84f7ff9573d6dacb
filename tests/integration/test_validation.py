"""Validation judges a run on what it wrote: a violation in a link the run wrote fails exactly its
expectation; the same violation in a document the run did not write is drift, and the run passes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient
from pymongo.database import Database

from linkage.core.keys import id_key
from linkage.core.settings import Settings
from linkage.dev.seed import seed
from linkage.dev.server import EmbeddedServer
from linkage.relations import REGISTRY
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate
from linkage.stages.validate import validate_run
from linkage.store import backup
from linkage.store.journal import Journal
from linkage.validation.gate import _outcome
from linkage.validation.metrics import CHUNK, Measured, lost_findings

from helpers import app_quiet

Corruption = Callable[[Database, str], Callable[[], Any]]


@pytest.fixture(scope="module")
def migrated(wire_server: EmbeddedServer, client: MongoClient,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Linkage, str, dict[str, int]]]:
    """A migrated database, its run, and the drift the seed's dirty data shows before any corruption."""
    settings = Settings(mongo_uri=wire_server.uri, db="validation_suite", home=tmp_path_factory.mktemp("validation"),
                        app_quiet=app_quiet(wire_server))
    client.drop_database(settings.db)
    seed(client[settings.db], customers=600, seed_value=21)
    lk = Linkage(settings, client)
    result = migrate(lk, MigrationParams(), "test")
    assert result.state == "succeeded", result
    baseline = {e.name: e.drift for e in validate_run(lk, result.run_id).expectations}
    yield lk, result.run_id, baseline
    client.drop_database(settings.db)


def written(db: Database, run_id: str, coll: str) -> list[Any]:
    """Documents of `coll` this run wrote a link on."""
    journal = Journal(db.linkage_journal)
    return [w.oid for record in journal.records(run_id) for w in record.writes if w.coll == coll]


def run_linked_pair(db: Database, run_id: str) -> tuple[dict, dict]:
    user = db.users.find_one({"_id": written(db, run_id, "users")[-1]})
    return user, db.customers_v2.find_one({"id": user["customer_v2_id"]})


def seeded_pair(db: Database, run_id: str) -> tuple[dict, dict]:
    """A pair that was whole before the run (the seed's `already_linked`)."""
    ours = set(written(db, run_id, "users"))
    for user in db.users.find({"customer_v2_id": {"$gt": ""}}):
        customer = db.customers_v2.find_one({"id": user["customer_v2_id"]})
        if user["_id"] not in ours and customer and customer.get("user_id") == user["id"]:
            return user, customer
    raise AssertionError("the seed plants whole pairs")


def dangling_order(pick: str) -> Corruption:
    def corrupt(db: Database, run_id: str) -> Callable[[], Any]:
        ours = set(written(db, run_id, "delivery_statuses"))
        delivery = next(d for d in db.delivery_statuses.find({"order_id": {"$gt": ""}})
                        if (d["_id"] in ours) == (pick == "run") and db.orders.find_one({"id": d["order_id"]}))
        order = db.orders.find_one({"id": delivery["order_id"]})
        db.orders.delete_one({"_id": order["_id"]})  # the app deletes the order the link names
        return lambda: db.orders.insert_one(order)
    return corrupt


def duplicated_link(pick: str) -> Corruption:
    def corrupt(db: Database, run_id: str) -> Callable[[], Any]:
        _, customer = (run_linked_pair if pick == "run" else seeded_pair)(db, run_id)
        other = db.users.find_one({"role": "admin"})
        db.users.update_one({"_id": other["_id"]}, {"$set": {"customer_v2_id": customer["id"]}})
        return lambda: db.users.update_one({"_id": other["_id"]}, {"$unset": {"customer_v2_id": ""}})
    return corrupt


def one_sided(pick: str) -> Corruption:
    def corrupt(db: Database, run_id: str) -> Callable[[], Any]:
        user, customer = (run_linked_pair if pick == "run" else seeded_pair)(db, run_id)
        db.users.update_one({"_id": user["_id"]}, {"$unset": {"customer_v2_id": ""}})
        return lambda: db.users.update_one({"_id": user["_id"]}, {"$set": {"customer_v2_id": customer["id"]}})
    return corrupt


def deleted_document(db: Database, run_id: str) -> Callable[[], Any]:
    victim = db.customers_v2.find_one({"user_id": {"$in": [None, ""]}}, sort=[("_id", -1)])
    db.customers_v2.delete_one({"_id": victim["_id"]})
    return lambda: db.customers_v2.insert_one(victim)


@pytest.mark.parametrize(("corrupt", "expectation", "count"), [
    (dangling_order("run"), "order_refs_dangling", 1),
    (duplicated_link("run"), "user_link_duplicates", 2),
    (one_sided("run"), "links_disagree", 1),
], ids=["dangling-order", "duplicated-link", "one-sided"])
def test_a_violation_in_a_link_the_run_wrote_fails_exactly_its_expectation(
        migrated: tuple[Linkage, str, dict[str, int]], corrupt: Corruption, expectation: str,
        count: int) -> None:
    lk, run_id, baseline = migrated
    undo = corrupt(lk.db, run_id)
    try:
        outcome = validate_run(lk, run_id)
    finally:
        undo()
    assert [e.name for e in outcome.failed] == [expectation] and not outcome.success
    failed = outcome.failed[0]
    assert failed.observed == count and len(failed.examples) == count and not any("@" in x for x in failed.examples)
    assert {e.name: e.drift for e in outcome.expectations} == baseline
    assert lk.runs.get(run_id)["validation"]["failed"] == [expectation]
    assert (lk.settings.docs_dir / outcome.data_docs).is_file()


@pytest.mark.parametrize(("corrupt", "expectation", "count"), [
    (dangling_order("before"), "order_refs_dangling", 1),
    (duplicated_link("before"), "user_link_duplicates", 2),
    (one_sided("before"), "links_disagree", 1),
    (deleted_document, "documents_lost", 1),
], ids=["dangling-order", "duplicated-link", "one-sided", "deleted"])
def test_the_same_violation_the_run_did_not_cause_is_drift_and_the_run_passes(
        migrated: tuple[Linkage, str, dict[str, int]], corrupt: Corruption, expectation: str,
        count: int) -> None:
    lk, run_id, baseline = migrated
    undo = corrupt(lk.db, run_id)
    try:
        outcome = validate_run(lk, run_id)
    finally:
        undo()
    assert outcome.success and outcome.failed == []
    drift = {e.name: e.drift for e in outcome.expectations}
    assert drift == {**baseline, expectation: baseline[expectation] + count}
    assert lk.runs.get(run_id)["drift"]["by_expectation"][expectation] == drift[expectation]


def test_coverage_below_the_threshold_fails_the_run(migrated: tuple[Linkage, str, dict[str, int]]) -> None:
    lk, run_id, _ = migrated
    lk.runs.update(run_id, params=MigrationParams(min_user_coverage=0.99).model_dump(mode="json"))
    try:
        outcome = validate_run(lk, run_id)
    finally:
        lk.runs.update(run_id, params=MigrationParams().model_dump(mode="json"))
    assert [e.name for e in outcome.failed] == ["user_coverage"]
    assert outcome.failed[0].observed < 0.99 and outcome.failed[0].threshold == ">= 0.99"


def test_each_runs_data_docs_show_that_runs_thresholds(migrated: tuple[Linkage, str, dict[str, int]]) -> None:
    lk, run_id, _ = migrated
    pages = {}
    for threshold in (0.31, 0.62):
        lk.runs.update(run_id, params=MigrationParams(min_order_coverage=threshold).model_dump(mode="json"))
        site = (lk.settings.docs_dir / validate_run(lk, run_id).data_docs).parent
        pages[threshold] = "".join(p.read_text() for p in site.rglob("*.html") if "validations" in p.parts)
    lk.runs.update(run_id, params=MigrationParams().model_dump(mode="json"))
    assert "0.31" in pages[0.31] and "0.62" not in pages[0.31]
    assert "0.62" in pages[0.62] and "0.31" not in pages[0.62]


def test_an_expectation_gx_did_not_report_fails_closed() -> None:
    params = MigrationParams()
    for rule in (r for r in REGISTRY.rules() if r.judges_the_run):
        assert _outcome(rule, Measured(value=0), params, {}).success is False
        assert _outcome(rule, Measured(value=0), params, {rule.name: (True, 0)}).success is True


def test_a_run_that_fails_validation_is_rolled_back_and_recorded(lk: Linkage, db: Database,
                                                                  seeded: dict) -> None:
    before = {d["_id"]: d for d in db.users.find()}
    result = migrate(lk, MigrationParams(min_order_coverage=0.999), "test")
    assert result.state == "rolled_back"
    assert [e.name for e in result.validation.failed] == ["order_coverage"]
    assert "order_coverage" in result.error
    assert {d["_id"]: d for d in db.users.find()} == before
    kept = migrate(lk, MigrationParams(min_order_coverage=0.999, rollback_on_failure=False), "test", new=True)
    assert kept.state == "failed" and db.users.count_documents({"customer_v2_id": {"$gt": ""}}) > len(
        [u for u in before.values() if u.get("customer_v2_id")])


def test_the_gate_logs_nothing_of_gx_below_a_warning(tmp_path: Path) -> None:
    """A person reads the validate log: GX's INFO chatter (temporary directories, stores) must not be in it."""
    script = ("import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr);"
              "from linkage.run.params import MigrationParams; from linkage.validation.gate import validate;"
              "from linkage.validation.metrics import Measured;"
              "from linkage.relations import REGISTRY;"
              "validate({r.name: Measured(value=1.0 if r.kind == 'coverage' else 0) for r in REGISTRY.rules()},"
              f" MigrationParams(), __import__('pathlib').Path({str(tmp_path)!r}), 'run-1', 'app')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GX_ANALYTICS_ENABLED": "false"})
    assert done.returncode == 0, done.stderr[-2000:]
    chatter = [line for line in done.stderr.splitlines()
               if "great_expectations" in line and not line.startswith(("WARNING", "ERROR", "CRITICAL"))]
    assert chatter == []
    assert (tmp_path / "run-1" / "index.html").is_file()


def test_documents_lost_are_exactly_the_backed_up_documents_deleted_since(db: Database, tmp_path: Path) -> None:
    """`_id`s of three types, deletes at the ends of a chunk, app inserts and replacements among the backed-up
    ids: the lost documents are exactly the deleted ones. (nx cannot query booleans, binary data or subdocuments
    as `_id`s, so they are left out; `_id_key` keeps them apart on a real MongoDB.)"""
    oids = sorted(ObjectId() for _ in range(2 * CHUNK + 3))
    ids: list[Any] = [*oids, *(f"k{i:05}" for i in range(40)), *range(-20, 20)]
    db.things.insert_many({"_id": oid, "n": i} for i, oid in enumerate(ids))
    backup.dump(db, ["things"], tmp_path / "b", "run-1")
    deleted = [oids[0], oids[CHUNK - 1], oids[CHUNK], oids[-1], "k00000", "k00039", -20, 19]
    for oid in deleted:
        assert db.things.delete_one({"_id": oid}).deleted_count == 1
    db.things.insert_many([{"_id": f"k00010-{i:03}"} for i in range(200)])  # the app goes on writing,
    for i in range(20, 39):  # and replaces documents (which puts them last in a scan, after its inserts)
        doc = db.things.find_one_and_delete({"_id": f"k{i:05}"})
        db.things.insert_one(doc)
    db.things.insert_many([{"_id": 100}, {"_id": ObjectId()}])
    findings = [f for chunk in lost_findings(db, str(tmp_path / "b")) for f in chunk]
    assert sorted(map(repr, (f.oid for f in findings))) == sorted(map(repr, deleted))
    assert {f.rule.name for f in findings} == {"documents_lost"}


def test_id_keys_keep_apart_what_python_would_merge() -> None:
    """What `documents_lost` keys ids by (nx cannot store these, a real MongoDB can): `True` and `1` are two
    `_id`s, and a subdocument is one, hashable."""
    assert len({id_key(True), id_key(1), id_key(1.5), id_key({"a": 1}), id_key({"a": 1})}) == 4
