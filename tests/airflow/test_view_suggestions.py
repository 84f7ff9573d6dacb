"""Issue 28 through the Linkage view (a real Airflow api-server app, signed in as `admin`, and as `viewer`, who may
read but not decide): each item's evidence
beside its candidates, the suggestion with its waterfall, a conflict's rivals one link away; the filter by
minimum probability and its count; "Accept all N suggestions" records them as the signed-in user, refuses a
count that changed since it was shown, and caps what a request can ask; the counters a page asks again.
App data is written by strangers: what an item carries is escaped."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from pymongo.database import Database

from linkage.core.settings import Settings
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate

from suggested import plant_suggestions

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
ACCEPT = "/linkage/api/suggestions/accept"


@pytest.fixture
def suggested(airflow_env: Settings, db: Database, seeded: dict, lk: Linkage) -> dict[str, dict[str, Any]]:
    migrate(lk, MigrationParams(), "test")
    return plant_suggestions(lk.reviews.coll)


def open_at(suggested: dict[str, dict[str, Any]], bar: float) -> set[str]:
    return {item_id for item_id, s in suggested.items() if s["probability"] >= bar}


def test_the_view_shows_the_evidence_the_suggestion_its_waterfall_and_a_conflicts_rivals(
        airflow_api: Any, lk: Linkage, suggested: dict[str, dict[str, Any]]) -> None:
    item_id = next(i for i, s in suggested.items() if s["target"] != "none")
    item = lk.reviews.coll.find_one({"_id": item_id})
    lk.reviews.coll.update_one({"_id": item_id}, {"$set": {"evidence.facts.status": "<script>alert(1)</script>"}})
    page = airflow_api.get("/linkage/", params={"category": "ambiguous", "min_probability": "0.9", "size": 500}).text
    row = page.split(f'id="item-{item_id}"')[1].split("</tr>\n</table>")[0].split('<tr class="item')[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row and "<script>alert" not in page
    assert '<table class="evidence"' in row and '<span class="mark mark-similar">similar 0.87</span>' in row
    assert '<span class="mark mark-equal">equal</span>' in row and "mark-different" in row
    target = suggested[item_id]["target"]
    assert f'data-suggested="{target}"' in row and f'<strong class="target">{target}</strong>' in row
    assert f"match probability {suggested[item_id]['probability']:.3f}" in row
    assert re.search(r'<svg class="waterfall"[^>]*aria-label="match weights: prior -1.0, status equal \+4.5, '
                     r'total \+3.5"', row)
    assert row.count('class="bar up"') == 1 and row.count('class="bar down"') == 1 and 'class="bar total"' in row
    assert all(f"<code>{c['id']}</code>" in row for c in item["candidates"])

    conflict = lk.reviews.coll.find_one({"category": "conflict", "status": "open", "evidence": {"$exists": True}})
    rival = conflict["evidence"]["rivals"][0]
    shown = airflow_api.get("/linkage/", params={"category": "conflict", "size": 500}).text
    assert f'<a class="rival" href="/linkage/item?item_id={quote(rival)}">' in shown
    opened = airflow_api.get("/linkage/item", params={"item_id": rival})
    assert opened.status_code == 200 and f'data-item="{rival}"' in opened.text and 'form class="decide"' in opened.text
    assert airflow_api.get("/linkage/item", params={"item_id": "<b>nope</b>"}).status_code == 404


def test_the_filter_by_probability_shows_its_count_and_refuses_what_is_not_a_probability(
        airflow_api: Any, lk: Linkage, suggested: dict[str, dict[str, Any]]) -> None:
    held = len(open_at(suggested, 0.9))
    page = airflow_api.get("/linkage/", params={"min_probability": "0.9"}).text
    assert f'<small id="review-total">{held:,} items</small>' in page
    assert f'data-expected="{held}"' in page and f"Accept all {held:,} suggestions</button>" in page
    assert "Accept all" not in airflow_api.get("/linkage/").text
    for wrong in ("1.5", "-0.1", "x", "nan"):
        assert airflow_api.get("/linkage/", params={"min_probability": wrong}).status_code == 422, wrong
    counts = airflow_api.get("/linkage/api/review/counts", params={"min_probability": "0.95"}).json()
    assert counts == {"counts": {"open": len(open_at(suggested, 0.95)), "decided": 0, "resolved": 0},
                      "total": len(open_at(suggested, 0.95))}
    exported = airflow_api.get("/linkage/review.csv", params={"min_probability": "0.9"}).text
    assert exported.count("\n") == held + 1


def test_accept_all_records_the_filters_suggestions_as_the_signed_in_user_or_refuses_a_changed_count(
        airflow_api: Any, lk: Linkage, suggested: dict[str, dict[str, Any]]) -> None:
    delivery = {i for i in open_at(suggested, 0.9) if lk.reviews.coll.find_one({"_id": i})["step"] == "order_delivery"}
    body = {"step": "order_delivery", "category": "ambiguous", "min_probability": 0.9, "expected": len(delivery)}
    changed = airflow_api.post(ACCEPT, json={**body, "expected": len(delivery) + 1})
    assert changed.status_code == 409 and changed.json()["held"] == len(delivery)
    for wrong in ({**body, "min_probability": 2}, {**body, "expected": 0}, {**body, "step": "nope"},
                  {**body, "category": "<b>"}, {"expected": 1}):
        assert airflow_api.post(ACCEPT, json=wrong).status_code == 422, wrong
    assert airflow_api.post(ACCEPT, content=b"{" + b" " * 5000 + b"}",
                            headers={"Content-Type": "application/json"}).status_code == 413
    assert lk.decisions.coll.count_documents({}) == 0

    accepted = airflow_api.post(ACCEPT, json=body)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["decided"] == len(delivery) and accepted.json()["left"] == 0
    recorded = {d.item_id: d for d in lk.decisions.pending()}
    assert set(recorded) == delivery
    assert {(d.by, d.via) for d in recorded.values()} == {("airflow:admin", "view")}
    assert all((d.target or "none") == suggested[i]["target"] for i, d in recorded.items())
    counts = airflow_api.get("/linkage/api/review/counts", params={"step": "order_delivery", "category": "ambiguous",
                                                                   "min_probability": "0.9", "status": ""}).json()
    assert counts["counts"]["open"] == 0 and counts["counts"]["decided"] == len(delivery)
    again = airflow_api.post(ACCEPT, json=body)
    assert again.status_code == 409 and again.json()["held"] == 0
    bands = airflow_api.get("/linkage/api/quality").json()["bands"]
    assert sum(b["decided"] for b in bands) == sum(b["accepted"] for b in bands) == len(delivery)
    assert {b["label"]: b["decided"] for b in bands if b["decided"]} == {
        "0.9–0.97": sum(suggested[i]["probability"] < 0.97 for i in delivery),
        "≥ 0.97": sum(suggested[i]["probability"] >= 0.97 for i in delivery)}


def test_a_read_only_user_sees_the_suggestions_and_their_count_but_accepting_them_is_refused(
        airflow_api: Any, airflow_viewer: Any, lk: Linkage, suggested: dict[str, dict[str, Any]]) -> None:
    held = len(open_at(suggested, 0.9))
    page = airflow_viewer.get("/linkage/", params={"min_probability": "0.9"}).text
    assert f"{held:,} open items of this filter have suggestions at p &ge; 0.90" in page
    assert 'id="accept-all"' not in page and 'form class="decide"' not in page and "accepts it" not in page
    assert '<svg class="waterfall"' in page
    refused = airflow_viewer.post(ACCEPT, json={"min_probability": 0.9, "expected": held})
    assert refused.status_code == 403 and lk.decisions.coll.count_documents({}) == 0
