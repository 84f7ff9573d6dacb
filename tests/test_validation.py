"""Issue 4 acceptance: the suites pass on a good migration; each corruption fails exactly its expectation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from linkage import pipeline
from linkage.models import MigrationParams
from linkage.seed import seed
from linkage.server import EmbeddedServer
from linkage.settings import Settings


@pytest.fixture(scope="module")
def migrated(wire_server: EmbeddedServer, client: MongoClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[pipeline.Linkage, str]]:
    tmp = tmp_path_factory.mktemp("validation")
    settings = Settings(mongo_uri=wire_server.uri, db="validation_suite", backup_dir=tmp / "b", docs_dir=tmp / "gx")
    client.drop_database(settings.db)
    seed(client[settings.db], customers=600, seed_value=21)
    lk = pipeline.Linkage(settings, client)
    result = pipeline.migrate(lk, MigrationParams(), "test")
    assert result["state"] == "succeeded", result
    yield lk, result["run_id"]
    client.drop_database(settings.db)


def linked_pair(db: Database, run_id: str) -> tuple[dict, dict]:
    """A user-customer pair that this run linked."""
    proposal = db.linkage_link_plan.find_one({"run_id": run_id, "conflict": False})
    return db.users.find_one({"_id": proposal["user_oid"]}), db.customers_v2.find_one({"_id": proposal["customer_oid"]})


def dangling_order(db: Database, run_id: str) -> Callable[[], None]:
    ds = db.delivery_statuses.find_one({"order_id": {"$gt": ""}}, sort=[("_id", -1)])
    db.delivery_statuses.update_one({"_id": ds["_id"]}, {"$set": {"order_id": "no-such-order"}})
    return lambda: db.delivery_statuses.update_one({"_id": ds["_id"]}, {"$set": {"order_id": ds["order_id"]}})


def duplicated_customer_link(db: Database, run_id: str) -> Callable[[], None]:
    _, customer = linked_pair(db, run_id)
    other = db.users.find_one({"role": "admin"})
    db.users.update_one({"_id": other["_id"]}, {"$set": {"customer_v2_id": customer["id"]}})
    return lambda: db.users.update_one({"_id": other["_id"]}, {"$unset": {"customer_v2_id": ""}})


def one_sided_pair(db: Database, run_id: str) -> Callable[[], None]:
    user, customer = linked_pair(db, run_id)
    db.users.update_one({"_id": user["_id"]}, {"$unset": {"customer_v2_id": ""}})
    return lambda: db.users.update_one({"_id": user["_id"]}, {"$set": {"customer_v2_id": customer["id"]}})


def deleted_document(db: Database, run_id: str) -> Callable[[], None]:
    victim = db.customers_v2.find_one({"user_id": {"$in": [None, ""]}}, sort=[("_id", -1)])
    db.customers_v2.delete_one({"_id": victim["_id"]})
    return lambda: db.customers_v2.insert_one(victim)


@pytest.mark.parametrize(("corrupt", "failing", "observed", "params"), [
    (None, set(), None, {}),
    (dangling_order, {"order_refs_dangling"}, 1, {}),
    (duplicated_customer_link, {"user_link_duplicates"}, 2, {}),
    (one_sided_pair, {"links_disagree"}, 1, {}),
    (deleted_document, {"documents_lost"}, 1, {}),
    (None, {"user_coverage"}, None, {"min_user_coverage": 0.99}),
], ids=["clean", "dangling-order", "duplicated-link", "one-sided", "deleted", "low-coverage"])
def test_each_corruption_fails_exactly_its_expectation(
        migrated: tuple[pipeline.Linkage, str], corrupt: Callable | None, failing: set[str], observed: Any,
        params: dict[str, float]) -> None:
    lk, run_id = migrated
    lk.runs.update(run_id, params=MigrationParams(**params).model_dump(mode="json"))
    undo = corrupt(lk.db, run_id) if corrupt else None
    try:
        outcome = pipeline.validate_run(lk, run_id)
    finally:
        if undo:
            undo()
    assert {e.name for e in outcome.failed} == failing
    assert outcome.success is (not failing)
    for e in outcome.failed:
        if observed is not None:
            assert e.observed == observed
            assert e.examples and not any("@" in x for x in e.examples)
        else:
            assert e.observed < params["min_user_coverage"]
    stored = lk.runs.get(run_id)["validation"]
    assert stored["failed"] == sorted(failing) or set(stored["failed"]) == failing
    assert Path(outcome.data_docs.removeprefix("file://")).exists()


def test_a_run_that_fails_validation_is_rolled_back_and_recorded(lk: pipeline.Linkage, db: Database, seeded: dict) -> None:
    before = {d["_id"]: d for d in db.users.find()}
    result = pipeline.migrate(lk, MigrationParams(min_order_coverage=0.999), "test")
    assert result["state"] == "rolled_back"
    assert result["validation"]["failed"] == ["order_coverage"]
    assert "order_coverage" in result["error"]
    assert {d["_id"]: d for d in db.users.find()} == before
    kept = pipeline.migrate(lk, MigrationParams(min_order_coverage=0.999, rollback_on_failure=False), "test", new=True)
    assert kept["state"] == "failed" and db.users.count_documents({"customer_v2_id": {"$gt": ""}}) > len(
        [u for u in before.values() if u.get("customer_v2_id")])
