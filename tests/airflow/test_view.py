"""The Linkage view's app, inside Airflow's own api-server app (its auth manager, its plugin loading):
refused without a login; with one, it shows what `linkage status` shows, exports the review queue as
the database holds it, serves each run's Data Docs and never a phone or an email."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pymongo.database import Database

from linkage.core.csvsafe import read_rows
from linkage.core.settings import Settings
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate
from linkage.store.review_queue import CATEGORIES

from helpers import last_json, run_cli

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture
def migrated(airflow_env: Settings, db: Database, seeded: dict, lk: Linkage) -> dict[str, Any]:
    return migrate(lk, MigrationParams(), "test").as_json()  # the run as `--json` reports it


def test_every_route_refuses_a_request_without_a_login(airflow_api: Any, airflow_env: Settings) -> None:
    anonymous = {"cookies": {"_token": ""}}
    for path in ("/linkage/", "/linkage/api/status", "/linkage/api/runs", "/linkage/api/review", "/linkage/api/alerts",
                 "/linkage/review.csv", "/linkage/docs/_assets/MANIFEST.json", "/linkage/rollback?run_id=x",
                 "/linkage/api/decisions", "/linkage/api/item?item_id=x", "/linkage/findings?run_id=x"):
        refused = airflow_api.get(path, **anonymous)
        assert refused.status_code == 401, path
        assert "coverage" not in refused.text and "run_id" not in refused.text
    for path, body in (("/linkage/api/decisions", {"json": {"decisions": [{"item_id": "x", "decision": "none"}]}}),
                       ("/linkage/api/decisions.csv", {"content": b"item_id,decision\r\nx,none\r\n",
                                                       "headers": {"Content-Type": "text/csv"}})):
        assert airflow_api.post(path, **anonymous, **body).status_code == 401, path
    assert airflow_api.get("/linkage/api/status", headers={"Authorization": "Bearer not-a-token"}).status_code == 403


def test_status_is_what_the_cli_reports(airflow_api: Any, airflow_env: Settings, migrated: dict[str, Any]) -> None:
    shown = airflow_api.get("/linkage/api/status").json()
    cli = last_json(run_cli(airflow_env, "status", "--json").stdout)
    assert shown["coverage"] == cli["coverage"] and shown["open_review_items"] == cli["open_review_items"]
    assert [r["_id"] for r in shown["recent_runs"]] == [r["_id"] for r in cli["recent_runs"]] == [migrated["run_id"]]
    runs = airflow_api.get("/linkage/api/runs").json()
    assert runs[0]["run_id"] == migrated["run_id"] and runs[0]["linked"] == {
        step: counts["linked"] for step, counts in migrated["steps"].items()}
    assert runs[0]["drift"] == migrated["drift"]["total"] and runs[0]["dry_run"] is False


def test_the_review_queue_pages_filters_and_exports_as_the_database_holds_it(
        airflow_api: Any, airflow_env: Settings, lk: Linkage, migrated: dict[str, Any]) -> None:
    query = {"step": "order_delivery", "category": "ambiguous", "status": "open"}
    in_db = sorted(str(item["_id"]) for item in lk.reviews.coll.find(query))
    assert len(in_db) > 3
    exported = exported_rows(airflow_api.get("/linkage/review.csv", params=query).text)
    assert sorted(row["item_id"] for row in exported) == in_db
    assert {row["category"] for row in exported} == {"ambiguous"} and set(exported[0]) >= {"document_id", "reason"}
    assert all(row["candidates"] and row["decision"] == row["note"] == "" for row in exported)

    everything = sorted(lk.reviews.coll.find({"status": "open"}), key=lambda i: i["queue"])
    first = airflow_api.get("/linkage/api/review", params={"size": 25}).json()
    second = airflow_api.get("/linkage/api/review", params={"size": 25, "after": first["after"]}).json()
    assert first["total"] == len(everything) and first["size"] == 25 and second["first"] == 26
    assert [i["item_id"] for i in first["items"] + second["items"]] == [i["_id"] for i in everything[:50]]
    back = airflow_api.get("/linkage/api/review", params={"size": 25, "before": second["before"]}).json()
    assert back["items"] == first["items"]


def exported_rows(text: str) -> list[dict[str, str]]:
    return [row.cells for row in read_rows(text, ["item_id"])]


def test_filters_offer_review_categories_only_and_sizes_are_capped(
        airflow_api: Any, airflow_env: Settings, migrated: dict[str, Any]) -> None:
    page = airflow_api.get("/linkage/").text
    select = page[page.index('<select name="category">'):]
    offered = re.findall(r'<option value="([a-z_]*)"', select[:select.index("</select>")])
    assert offered == ["", *CATEGORIES] and "linked" not in offered and "already_linked" not in offered
    for params in ({"category": "linked"}, {"category": "already_linked"}, {"status": "closed"},
                   {"size": 10_000}, {"step": "nope"}, {"after": "x" * 5000}):
        assert airflow_api.get("/linkage/api/review", params=params).status_code == 422, params


def test_each_runs_data_docs_are_served_with_their_assets_and_nothing_outside(
        airflow_api: Any, airflow_env: Settings, migrated: dict[str, Any]) -> None:
    index = airflow_api.get(f"/linkage/docs/{migrated['validation']['data_docs']}")
    assert index.status_code == 200 and "linkage_run" in index.text and "linkage_drift" in index.text
    site = f"/linkage/docs/{migrated['validation']['data_docs'].rsplit('/', 1)[0]}"
    for link in {h for h in _local_links(index.text) if not h.startswith("#")}:
        assert airflow_api.get(f"{site}/{link}").status_code == 200, link
    assert "root:" not in airflow_api.get("/linkage/docs/../../../etc/passwd").text  # the client normalises it away
    for escape in ("%2e%2e/%2e%2e/%2e%2e/etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "%2fetc%2fpasswd"):
        assert airflow_api.get(f"/linkage/docs/{escape}").status_code == 404, escape


def _local_links(html: str) -> set[str]:
    from html.parser import HTMLParser

    found: set[str] = set()

    class Links(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for name, value in attrs:
                if name in ("href", "src") and value and "://" not in value and not value.startswith("mailto:"):
                    found.add(value.split("?")[0])

    Links().feed(html)
    return found


def test_the_page_shows_runs_coverage_queue_and_alerts_without_a_phone_or_an_email(
        airflow_api: Any, airflow_env: Settings, db: Database, migrated: dict[str, Any]) -> None:
    page = airflow_api.get("/linkage/")
    assert page.status_code == 200
    text = page.text
    assert migrated["run_id"] in text and "Roll back this run" in text and 'id="coverage-chart"' in text
    assert "drift found" in text and "no delivery channel configured" in text  # the CLI's alerts reached the log only
    raw = set()
    for name in ("users", "customers_v2"):
        for doc in db[name].find({}, {"phone": 1, "email": 1}):
            raw |= {str(v).strip() for v in (doc.get("phone"), doc.get("email")) if v and len(str(v).strip()) >= 8}
    item = db[airflow_env.collection("review")].find_one({"category": "ambiguous"})["_id"]
    pages = [text, airflow_api.get("/linkage/review.csv", params={"status": ""}).text,
             airflow_api.get("/linkage/api/review", params={"status": "", "size": 500}).text,
             airflow_api.get("/linkage/api/item", params={"item_id": item}).text,
             airflow_api.get("/linkage/api/alerts").text,
             airflow_api.get(f"/linkage/rollback?run_id={migrated['run_id']}").text]
    assert sorted(v for v in raw if any(v in p for p in pages)) == []
    assert all("https://" not in p and "http://" not in p for p in pages[:1])  # nothing loaded from elsewhere


def test_the_rollback_form_is_filled_in_with_the_run(airflow_api: Any, migrated: dict[str, Any]) -> None:
    form = airflow_api.get("/linkage/rollback", params={"run_id": migrated["run_id"]}).text
    assert f'value="{migrated["run_id"]}"' in form and "linkage_rollback" in form
    unknown = airflow_api.get("/linkage/rollback", params={"run_id": "nope"}).text
    assert "No linkage run" in unknown


def test_the_chart_draws_each_run_as_a_dot_so_a_first_run_shows() -> None:
    """One real run is a dot per relation (a line of one point draws nothing); dry runs are not plotted."""
    from linkage.airflow.view import coverage_chart
    from linkage.relations import REGISTRY
    from linkage.report.history import RunRow

    relations = REGISTRY.relations()

    def row(run_id: str, ratio: float, dry_run: bool = False) -> RunRow:
        return RunRow(run_id=run_id, kind="migrate", dry_run=dry_run, state="succeeded", linked={}, drift=0,
                      validated=True, data_docs=None, backup=None, dag_id=None, dag_run_id=None,
                      coverage={r.name: ratio for r in relations}, error=None)
    names = [r.name for r in relations]
    one = coverage_chart([row("dry", 0.1, dry_run=True), row("first", 0.5)])  # newest first, as the history lists
    assert one["runs"] == 1 and [len(one["points"][n]) for n in names] == [1, 1, 1]
    two = coverage_chart([row("second", 1.0), row("first", 0.5)])
    top, bottom = two["pad"], two["height"] - two["pad"]
    assert [y for _, y in two["points"][names[0]]] == [(top + bottom) / 2, top]  # oldest on the left, 100% on top
