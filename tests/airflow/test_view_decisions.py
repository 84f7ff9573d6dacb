"""Issue 19 through the Linkage view (a real Airflow api-server app, signed in as `admin`; issue 28: a
`viewer` reads the queue but may not decide): decisions by the JSON API and by uploading a filled-in
export, as the signed-in user, all or nothing, capped; the export is the bytes `linkage review --csv`
prints and `linkage decide --file` imports; after a dry run the view shows what it found (issue 23 item 7),
and the page's time at 100,000 review items is measured."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo.database import Database

from linkage.airflow.view.decisions import MAX_JSON_BYTES, MAX_PER_REQUEST, MAX_UPLOAD_BYTES
from linkage.core.csvsafe import read_rows, write_rows
from linkage.core.models import Category, Ruling
from linkage.core.settings import Settings
from linkage.relations import REGISTRY
from linkage.review.intake import MAX_NOTE
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate
from linkage.store.review_key import FIELD, queue_key
from linkage.store.review_queue import CATEGORIES, item_document

from helpers import ROOT, cli_env

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
MEASUREMENTS = ROOT / "var" / "measurements"


@pytest.fixture
def migrated(airflow_env: Settings, db: Database, seeded: dict, lk: Linkage) -> dict[str, Any]:
    return migrate(lk, MigrationParams(), "test").as_json()


def first_item(lk: Linkage, **query: Any) -> dict[str, Any]:
    found = lk.reviews.coll.find_one({"status": "open", **query})
    assert found is not None, query
    return found


def test_decisions_through_the_api_are_the_signed_in_users_and_all_or_nothing(
        airflow_api: Any, airflow_env: Settings, lk: Linkage, migrated: dict[str, Any]) -> None:
    ambiguous, unmatched = first_item(lk, category="ambiguous"), first_item(lk, category="unmatched")
    body = {"via": "view", "decisions": [
        {"item_id": ambiguous["_id"], "decision": ambiguous["candidates"][0]["id"], "note": "the first one"},
        {"item_id": unmatched["_id"], "decision": "none"}]}
    saved = airflow_api.post("/linkage/api/decisions", json=body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["decided"] == 2 and saved.json()["by_kind"] == {"link": 1, "none": 1}
    assert {(d.by, d.via) for d in lk.decisions.pending()} == {("airflow:admin", "view")}
    assert lk.reviews.coll.count_documents({"status": "decided"}) == 2

    refused = airflow_api.post("/linkage/api/decisions", json={"decisions": [
        {"item_id": "nope", "decision": "none"}, {"item_id": ambiguous["_id"], "decision": "no-such-order"},
        {"item_id": first_item(lk, category="invalid")["_id"], "decision": "none"}]})
    assert refused.status_code == 422
    assert [(r["line"], r["reason"][:12]) for r in refused.json()["refused"]] == [(1, "unknown item"),
                                                                                  (2, "'no-such-ord")]
    assert lk.decisions.coll.count_documents({}) == 2  # the good third decision was not recorded either
    for wrong in ({"data": {"item_id": "x", "decision": "none"}},  # a form post: not JSON
                  {"json": {"decisions": [{"item_id": "x", "decision": "none"}] * (MAX_PER_REQUEST + 1)}},
                  {"json": {"decisions": [{"item_id": "x", "decision": "none", "note": "n" * (MAX_NOTE + 1)}]}}):
        assert airflow_api.post("/linkage/api/decisions", **wrong).status_code == 422
    huge = b'{"decisions": [' + b" " * MAX_JSON_BYTES + b"]}"
    assert airflow_api.post("/linkage/api/decisions", content=huge,
                            headers={"Content-Type": "application/json"}).status_code == 413
    assert lk.decisions.coll.count_documents({}) == 2

    history = airflow_api.get("/linkage/api/decisions", params={"item_id": ambiguous["_id"]}).json()
    assert [(d["kind"], d["target"], d["by"], d["note"]) for d in history] == [
        ("link", ambiguous["candidates"][0]["id"], "airflow:admin", "the first one")]
    assert "state" not in history[0]
    shown = airflow_api.get("/linkage/api/item", params={"item_id": ambiguous["_id"]}).json()
    assert shown["item"]["status"] == "decided" and shown["item"]["decision"]["by"] == "airflow:admin"
    assert airflow_api.get("/linkage/api/item", params={"item_id": "nope"}).status_code == 404


def test_a_viewer_reads_the_queue_but_every_way_to_decide_is_refused_403_and_nothing_is_recorded(
        airflow_api: Any, airflow_viewer: Any, airflow_env: Settings, lk: Linkage, migrated: dict[str, Any]) -> None:
    """Issue 28: who may decide is Airflow's permission (triggering linkage_apply_decisions), not a login."""
    ambiguous = first_item(lk, category="ambiguous")
    read = airflow_viewer.get("/linkage/", params={"category": "ambiguous"})
    assert read.status_code == 200 and ambiguous["_id"] in read.text
    assert 'class="decide"' not in read.text and 'id="import-form"' not in read.text
    assert "may read the review queue but not decide" in read.text
    assert 'class="decide"' in airflow_api.get("/linkage/", params={"category": "ambiguous"}).text
    one = {"item_id": ambiguous["_id"], "decision": ambiguous["candidates"][0]["id"]}
    export = airflow_viewer.get("/linkage/review.csv", params={"category": "ambiguous"})
    assert export.status_code == 200
    refused = [airflow_viewer.post("/linkage/api/decisions", json={"via": "view", "decisions": [one]}),  # the form
               airflow_viewer.post("/linkage/api/decisions", json={"decisions": [one]}),  # the JSON API
               airflow_viewer.post("/linkage/api/decisions.csv", headers={"Content-Type": "text/csv"},
                                   content=filled(export.text, {one["item_id"]: one["decision"]}).encode())]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert refused[0].json()["detail"] == ("viewer may read the review queue but not decide: deciding needs "
                                           "permission to trigger linkage_apply_decisions")
    assert lk.decisions.coll.count_documents({}) == 0
    assert lk.reviews.coll.find_one({"_id": ambiguous["_id"]})["status"] == "open"
    assert airflow_api.post("/linkage/api/decisions", json={"decisions": [one]}).status_code == 200


def cli_bytes(settings: Settings, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "linkage.cli.main", *args], capture_output=True, timeout=240,
                          env=cli_env(settings), cwd=ROOT)


def filled(text: str, decisions: dict[str, str]) -> str:
    rows = [row.cells for row in read_rows(text, ["item_id"])]
    for row in rows:
        row["decision"] = decisions.get(row["item_id"], "")
    return "".join(write_rows(list(rows[0]), rows))


def test_the_views_export_is_what_linkage_review_prints_and_both_imports_are_all_or_nothing(
        airflow_api: Any, airflow_env: Settings, lk: Linkage, migrated: dict[str, Any], tmp_path: Path) -> None:
    view = airflow_api.get("/linkage/review.csv", params={"step": "order_delivery", "status": "open"})
    cli = cli_bytes(airflow_env, "review", "--csv", "--step", "order_delivery")
    assert cli.returncode == 0, cli.stderr
    assert view.content == cli.stdout and view.headers["content-type"].startswith("text/csv")
    ambiguous, dangling = first_item(lk, category="ambiguous"), first_item(lk, category="dangling")
    good = filled(view.text, {ambiguous["_id"]: ambiguous["candidates"][1]["id"], dangling["_id"]: "clear"})
    bad = filled(view.text, {ambiguous["_id"]: "no-such-order", dangling["_id"]: "clear"})

    upload = {"headers": {"Content-Type": "text/csv"}}
    assert airflow_api.post("/linkage/api/decisions.csv", content=good.encode(),
                            headers={"Content-Type": "text/plain"}).status_code == 415
    assert airflow_api.post("/linkage/api/decisions.csv", content=b"x" * (MAX_UPLOAD_BYTES + 1),
                            **upload).status_code == 413
    refused = airflow_api.post("/linkage/api/decisions.csv", content=bad.encode(), **upload)
    assert refused.status_code == 422 and len(refused.json()["refused"]) == 1
    assert refused.json()["refused"][0]["reason"].startswith("'no-such-order' is neither a candidate")
    assert lk.decisions.coll.count_documents({}) == 0

    (tmp_path / "bad.csv").write_text(bad, newline="")
    done = cli_bytes(airflow_env, "decide", "--file", str(tmp_path / "bad.csv"), "--json")
    assert done.returncode == 1 and b"is neither a candidate" in done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["state"] == "failed" and lk.decisions.coll.count_documents({}) == 0
    recorded = airflow_api.post("/linkage/api/decisions.csv", content=good.encode(), **upload)
    assert recorded.status_code == 200 and recorded.json()["by_kind"] == {"link": 1, "clear": 1}
    assert {(d.by, d.via) for d in lk.decisions.pending()} == {("airflow:admin", "csv")}

    again = filled(view.text, {ambiguous["_id"]: "none"})
    (tmp_path / "again.csv").write_text(again, newline="")
    done = cli_bytes(airflow_env, "decide", "--file", str(tmp_path / "again.csv"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["decided"] == 1
    assert [d.kind.value for d in lk.decisions.pending() if d.item_id == ambiguous["_id"]] == ["none"]
    assert next(d.by for d in lk.decisions.pending() if d.item_id == ambiguous["_id"]).startswith("cli:")


def test_after_a_dry_run_the_view_shows_what_it_would_link_and_opens_the_drift_it_found(
        airflow_api: Any, airflow_env: Settings, lk: Linkage, seeded: dict) -> None:
    dry = migrate(lk, MigrationParams(dry_run=True), "test")
    assert dry.drift and dry.drift.total > 0 and lk.reviews.coll.count_documents({}) == 0
    page = airflow_api.get("/linkage/").text
    assert "The last run was a dry run" in page and "No real run yet" in page
    for step, counts in dry.steps.items():
        assert f"<td>{step}</td><td>{counts['linked']:,}</td>" in page
    for rule, n in dry.drift.by_expectation.items():
        assert f"{rule} {n:,}</a>" in page
        shown = airflow_api.get("/linkage/findings", params={"run_id": dry.run_id, "rule": rule}).text
        assert shown.count('<tr class="found-item">') == n
    everything = airflow_api.get("/linkage/findings", params={"run_id": dry.run_id}).text
    assert everything.count('<tr class="found-item">') == dry.drift.total
    assert "No dry run" in airflow_api.get("/linkage/findings", params={"run_id": "nope"}).text


def plant(lk: Linkage, n: int) -> None:
    """`n` review items in the proportions a migrated queue has, written as the queue writes them."""
    now, steps = datetime.now(timezone.utc), list(REGISTRY)
    for start in range(0, n, 5000):
        docs = []
        for i in range(start, min(n, start + 5000)):
            step, category = steps[i % len(steps)], CATEGORIES[i % len(CATEGORIES)]
            doc = item_document("planted", step, "delivery_statuses", Ruling(
                oid=ObjectId(), app_id=f"doc-{i}", category=Category(category), reason="planted: for the timing"),
                "link", now)
            status = "open" if i % 10 else "resolved"
            docs.append({**doc, "status": status, FIELD: queue_key(status, step, category, doc["_id"])})
        lk.reviews.coll.insert_many(docs)


def test_the_page_at_100000_review_items_is_measured(
        airflow_api: Any, airflow_env: Settings, lk: Linkage, migrated: dict[str, Any]) -> None:
    """A measurement, not a timed assertion: the page's seconds at 100,000 items go to var/measurements."""
    plant(lk, 100_000)
    total = lk.reviews.coll.estimated_document_count()
    open_items = lk.reviews.coll.count_documents({"status": "open"})
    timings: dict[str, list[float]] = {}
    pages = {"first page": {}, "a category, 100 a page": {"category": "ambiguous", "size": 100},
             "any status": {"status": ""}}
    for name, params in pages.items():
        for _ in range(5):
            started = time.perf_counter()
            answer = airflow_api.get("/linkage/", params=params)
            timings.setdefault(name, []).append(time.perf_counter() - started)
            assert answer.status_code == 200
    page = airflow_api.get("/linkage/").text
    assert f"Review queue <small id=\"review-total\">{open_items:,} items</small>" in page
    after = page.split('class="next" href="')[1].split('"')[0].replace("&amp;", "&")
    started = time.perf_counter()
    assert airflow_api.get(after).status_code == 200
    timings["the next page"] = [time.perf_counter() - started]
    result = {"review_items": total, "seconds": {k: round(statistics.median(v), 3) for k, v in timings.items()}}
    MEASUREMENTS.mkdir(parents=True, exist_ok=True)
    (MEASUREMENTS / "view-100k.json").write_text(json.dumps(result, indent=2))
    print(f"\nthe Linkage view at {total:,} review items: {result['seconds']}")
