"""A third relation, added in the tests only (`toy_relation.py`), gets everything a relation gets: a backfill,
validation by its own rules, a Param and a CLI flag, coverage in `linkage status`, a task group in the DAG, and
rollback. No module outside tests/ names it: the registry is all the rest of linkage reads."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pymongo.database import Database

from linkage.cli import main as cli
from linkage.core.models import RunKind
from linkage.relations import REGISTRY, StepSpec
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate, undo_run
from linkage.stages.validate import validate_run

from helpers import raw_bytes
from toy_relation import LINK, STEP, OrderCustomer


@pytest.fixture
def toy() -> Iterator[StepSpec]:
    with REGISTRY.registered(OrderCustomer()) as spec:
        yield spec
    assert STEP not in REGISTRY


def expected_refs(db: Database) -> dict:
    """The oracle, an independent query: each order's customer_id where such a customer exists."""
    customers = {c["id"] for c in db.customers_v2.find({}, {"id": 1}) if isinstance(c.get("id"), str)}
    return {o["_id"]: o["customer_id"] for o in db.orders.find({}, {"customer_id": 1})
            if isinstance(o.get("customer_id"), str) and o["customer_id"] in customers}


def test_a_third_relation_gets_a_backfill_validation_a_param_coverage_and_rollback(
        toy: StepSpec, lk: Linkage, db: Database, seeded: dict, capsys: pytest.CaptureFixture[str]) -> None:
    db.orders.insert_many([{"id": "orphan", "customer_id": "nobody", "delivery_date": "2026-01-02"},
                           {"id": "no-customer", "customer_id": None, "delivery_date": "2026-01-02"}])
    before, expected = raw_bytes(db), expected_refs(db)

    report = migrate(lk, MigrationParams(), "test")  # every registered step, the toy's among them
    assert report.state == "succeeded"
    assert {o["_id"]: o[LINK] for o in db.orders.find({LINK: {"$exists": True}})} == expected
    counts = report.steps[STEP]
    assert (counts["linked"], counts["unmatched"], counts["invalid"]) == (len(expected), 1, 1)
    assert lk.reviews.coll.count_documents({"step": STEP, "status": "open"}) == 2
    assert report.validation is not None and report.validation.success
    judged = {e.name: e for e in report.validation.expectations}
    assert judged["order_customer_refs_dangling"].observed == 0
    assert judged["order_customer_coverage"].threshold == ">= 0.5"
    assert "orders.customer_v2_ref" in (report.coverage_after or {})

    # its rule judges the run: a customer the app deletes under a link this run wrote fails exactly that rule
    victim = next(c for c in expected.values() if not db.users.find_one({"customer_v2_id": c})
                  and not db.customers_v2.find_one({"id": c, "user_id": {"$gt": ""}}))  # no other link names it
    gone = db.customers_v2.find_one_and_delete({"id": victim})
    assert [e.name for e in validate_run(lk, report.run_id).failed] == ["order_customer_refs_dangling"]
    db.customers_v2.insert_one(gone)

    # a Param in the trigger form, a flag on the command line
    from linkage.airflow.params import form

    params = form()
    assert params["min_order_customer_coverage"].value == 0.5 and STEP in params["steps"].schema["items"]["enum"]
    assert "--min-order-customer-coverage" in cli.build_parser()._subparsers._group_actions[0].choices[
        "migrate"].format_help()

    # coverage in `linkage status`
    assert cli.main(["status", "--json", "--uri", lk.settings.mongo_uri, "--db", lk.settings.db]) == 0
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status["coverage"]["orders.customer_v2_ref"]["linked"] == len(expected)

    # rollback: byte-exact
    assert undo_run(lk, report.run_id).restored == sum(1 for r in lk.journal.records(report.run_id) for _ in r.writes)
    assert raw_bytes(db) == before


@pytest.mark.airflow
def test_the_dag_factory_gives_a_third_relation_its_task_group(toy: StepSpec) -> None:
    import pendulum

    from linkage.airflow.dag_factory import build_pipeline_dag
    from linkage.airflow.params import form

    for kind in RunKind:
        dag = build_pipeline_dag(kind=kind, dag_id=f"toy_{kind}", schedule=None, doc_md="toy", tags=["toy"],
                                 start_date=pendulum.datetime(2026, 1, 1), params=form())
        tasks = {t.task_id for t in dag.tasks}
        if kind == RunKind.DECISIONS:  # a relation that takes no decisions has no part in a decisions run
            assert not any(t.startswith(f"backfill_{STEP}") for t in tasks)
            continue
        assert {f"backfill_{STEP}.link", f"backfill_{STEP}.link_partitions", f"backfill_{STEP}.record_counts"} <= tasks
        assert dag.get_task(f"backfill_{STEP}.link").is_mapped
