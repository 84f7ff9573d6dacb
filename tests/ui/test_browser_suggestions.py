"""Issue 28 in real headless Chromium against `make airflow`: a reviewer sees each item's evidence and the
suggestion's waterfall, filters the queue by probability and sees how many items it holds, accepts one item's
suggestion with the key `a` and the rest with "Accept all N suggestions", as the signed-in user, and the
counters follow. The suggestions are the migration's own (its `suggest` stage). Screenshots of the evidence
view and of bulk acceptance go to LINKAGE_SCREENSHOTS."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from browser import chromium, sign_in, wait_for
from local_airflow import LocalAirflow, running
from test_browser import SCREENSHOTS, linkage_db, show_queue

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(600)]
STEP, CATEGORY = "order_delivery", "ambiguous"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflow]:
    with running(tmp_path_factory.mktemp("suggestions-airflow")) as local:
        yield local


@pytest.fixture(scope="module")
def queue(airflow: LocalAirflow) -> dict[str, dict[str, Any]]:
    """A kept migration's review queue: per open item its suggestion, as the run's `suggest` stage wrote it."""
    assert airflow.run("linkage_migration", {})["state"] == "success"
    return {item["_id"]: item["suggestion"] for item in linkage_db(airflow).linkage_review.find(
        {"status": "open", "suggestion": {"$exists": True}}, {"suggestion": 1})}


@pytest.fixture(scope="module")
def bar(airflow: LocalAirflow, queue: dict[str, dict[str, Any]]) -> str:
    """The minimum probability the person filters by: the median of the open ambiguous deliveries' suggestions,
    rounded down (so the filter holds about half of them, whatever the model makes of this small queue)."""
    found = sorted(i["suggested_p"] for i in linkage_db(airflow).linkage_review.find(
        {"status": "open", "step": STEP, "category": CATEGORY, "suggested_p": {"$exists": True}}, {"suggested_p": 1}))
    assert len(found) > 6, "the migration suggests for the ambiguous deliveries"
    return f"{math.floor(found[len(found) // 2] * 100) / 100:g}"


@pytest.fixture(scope="module")
def page(airflow: LocalAirflow, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A browser signed in as `admin`, as a person signs in."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chromium(tmp_path_factory.mktemp("profile")) as driver:
        sign_in(driver, airflow.base, "admin", airflow.password)
        yield driver


def filtered(driver: Any, airflow: LocalAirflow, probability: str, step: str = STEP, category: str = CATEGORY) -> None:
    """The open queue filtered as a person filters it: step, category, minimum probability, Show."""
    show_queue(driver, airflow, step, category, probability=probability)


def counter(driver: Any, status: str) -> int:
    from selenium.webdriver.common.by import By

    return int(driver.find_element(By.CSS_SELECTOR, f"[data-count='{status}']").text.replace(",", ""))


def open_at(airflow: LocalAirflow, bar: str) -> int:
    return int(linkage_db(airflow).linkage_review.count_documents(
        {"status": "open", "step": STEP, "category": CATEGORY, "suggested_p": {"$gte": float(bar)}}))


def test_the_evidence_and_the_waterfall_are_shown_and_the_filter_counts_what_it_holds(
        page: Any, airflow: LocalAirflow, queue: dict[str, dict[str, Any]], bar: str) -> None:
    from selenium.webdriver.common.by import By

    held = open_at(airflow, bar)
    assert held > 3
    filtered(page, airflow, bar)
    assert page.find_element(By.ID, "review-total").text == f"{held:,} items"
    assert counter(page, "open") == held
    assert page.find_element(By.ID, "accept-all").text == f"Accept all {held:,} suggestions"
    row = page.find_elements(By.CSS_SELECTOR, "tr.item")[0]
    suggestion = queue[str(row.get_attribute("data-item"))]
    evidence = row.find_element(By.CSS_SELECTOR, "table.evidence")
    assert evidence.is_displayed() and "this document" in evidence.text
    assert {"equal", "different"} <= {m.text.split()[0] for m in evidence.find_elements(By.CSS_SELECTOR, ".mark")}
    assert row.find_element(By.CSS_SELECTOR, "svg.waterfall").is_displayed()
    assert f"match probability {suggestion['probability']:.3f}" in row.find_element(By.CSS_SELECTOR, ".suggestion").text
    page.execute_script("document.getElementById('review').scrollIntoView()")
    page.save_screenshot(str(SCREENSHOTS / "review-evidence.png"))

    filtered(page, airflow, "0", "user_customer", "conflict")  # profiles: what matched, and the rival's item
    rival = page.find_elements(By.CSS_SELECTOR, "a.rival")
    assert rival, "a conflict links to the items of the other users that want its profile"
    page.execute_script("document.getElementById('review').scrollIntoView()")
    page.save_screenshot(str(SCREENSHOTS / "review-evidence-profiles.png"))
    target = rival[0].get_attribute("href")
    rival[0].click()
    wait_for(lambda: page.execute_script("return location.href") == target
             and page.find_elements(By.CSS_SELECTOR, "tr.item"))
    shown = page.find_element(By.CSS_SELECTOR, "tr.item").get_attribute("data-item")
    assert unquote(target).endswith(f"item_id={shown}")


def test_key_a_accepts_the_focused_items_suggestion_and_moves_on(
        page: Any, airflow: LocalAirflow, queue: dict[str, dict[str, Any]], bar: str) -> None:
    from selenium.webdriver.common.by import By

    db = linkage_db(airflow)
    filtered(page, airflow, bar)
    held = counter(page, "open")
    decided = counter(page, "decided")
    rows = page.find_elements(By.CSS_SELECTOR, "tr.item")
    first, second = (str(r.get_attribute("data-item")) for r in rows[:2])
    page.find_element(By.TAG_NAME, "body").send_keys("j")  # the first item
    page.switch_to.active_element.send_keys("a")  # its suggestion, saved; on to the next
    wait_for(lambda: "saved" in rows[0].find_element(By.CSS_SELECTOR, ".outcome").text)
    wait_for(lambda: page.switch_to.active_element.find_element(By.XPATH, "./ancestor::tr").get_attribute(
        "data-item") == second)
    stored = db.linkage_decisions.find_one({"item_id": first})
    assert (stored["target"] or "none", stored["by"], stored["via"]) == (queue[first]["target"], "airflow:admin",
                                                                         "view")
    wait_for(lambda: counter(page, "open") == held - 1)
    assert counter(page, "decided") == decided + 1
    assert page.find_element(By.ID, "review-total").text == f"{held - 1:,} items"


def test_accept_all_records_the_filters_suggestions_as_the_signed_in_user_and_the_counters_change(
        page: Any, airflow: LocalAirflow, queue: dict[str, dict[str, Any]], bar: str) -> None:
    from selenium.webdriver.common.by import By

    db = linkage_db(airflow)
    held = open_at(airflow, bar)
    items = {str(i["_id"]) for i in db.linkage_review.find(
        {"status": "open", "step": STEP, "category": CATEGORY, "suggested_p": {"$gte": float(bar)}}, {"_id": 1})}
    before = db.linkage_decisions.count_documents({})
    filtered(page, airflow, bar)
    decided = counter(page, "decided")
    page.find_element(By.ID, "accept-all").click()
    outcome = wait_for(lambda: "recorded" in page.find_element(By.ID, "accept-outcome").text
                       and page.find_element(By.ID, "accept-outcome").text)
    assert outcome.startswith(f"recorded {held:,} decisions (")
    wait_for(lambda: counter(page, "open") == 0)
    assert counter(page, "decided") == decided + held
    page.find_element(By.CSS_SELECTOR, "#quality summary").click()
    wait_for(lambda: page.find_elements(By.CSS_SELECTOR, ".quality-bands tbody tr"))
    accepted = sum(int(r.find_elements(By.TAG_NAME, "td")[2].text.replace(",", ""))
                   for r in page.find_elements(By.CSS_SELECTOR, ".quality-bands tbody tr"))
    assert accepted >= held
    page.execute_script("document.getElementById('review').scrollIntoView()")
    page.save_screenshot(str(SCREENSHOTS / "review-bulk-accept.png"))
    recorded = list(db.linkage_decisions.find({"item_id": {"$in": sorted(items)}}))
    assert db.linkage_decisions.count_documents({}) == before + held
    assert {(d["by"], d["via"]) for d in recorded} == {("airflow:admin", "view")}
    assert {d["item_id"]: d["target"] or "none" for d in recorded} == {i: queue[i]["target"] for i in items}
    assert db.linkage_review.count_documents({"_id": {"$in": sorted(items)}, "status": "decided"}) == held
