"""A data engineer's day in Airflow, in real headless Chromium against `make airflow`.

One local Airflow (scripts/airflow.sh, seeded demo data) for the module; runs are triggered the way a
person's scripts do (the REST API) or from the pages themselves. Bounded in time; everything started
is stopped, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from pymongo import MongoClient

from linkage.core.csvsafe import read_rows, write_rows

from browser import chromium, load, sign_in, wait_for
from helpers import ROOT, last_json
from local_airflow import LocalAirflow, running

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(600)]
#: What the browser saw, for a person to look at; tests never write into the repository's tracked files
#: (`LINKAGE_SCREENSHOTS=docs/images make test` refreshes the docs pages' pictures on purpose).
SCREENSHOTS = Path(os.environ.get("LINKAGE_SCREENSHOTS", ROOT / "var" / "screenshots"))


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAirflow]:
    with running(tmp_path_factory.mktemp("browser-airflow")) as local:
        yield local


@pytest.fixture(scope="module")
def runs(airflow: LocalAirflow) -> dict[str, dict[str, Any]]:
    """What a first day leaves: a dry run, a forced validation failure, a kept migration, a reconcile."""
    return {"dry": airflow.run("linkage_migration", {"dry_run": True}),
            "failed": airflow.run("linkage_migration", {"min_order_coverage": 0.999}),
            "kept": airflow.run("linkage_migration", {}),
            "nightly": airflow.run("linkage_reconcile", {})}


@pytest.fixture(scope="module")
def page(airflow: LocalAirflow, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A browser signed in to the local Airflow, as a person signs in."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chromium(tmp_path_factory.mktemp("profile")) as driver:
        sign_in(driver, airflow.base, "admin", airflow.password)
        yield driver


def linkage_db(airflow: LocalAirflow) -> Any:
    return MongoClient(airflow.mongo_uri).app


def open_view(driver: Any, airflow: LocalAirflow) -> None:
    """Linkage in Airflow's navigation, then into its frame."""
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    driver.get(f"{airflow.base}/")
    nav = "//a[.//*[normalize-space()='Linkage'] or normalize-space()='Linkage']"
    wait_for(lambda: driver.find_elements(By.XPATH, nav))
    driver.find_element(By.XPATH, nav).click()
    frame = wait_for(lambda: driver.find_elements(By.TAG_NAME, "iframe"))[0]
    driver.switch_to.frame(frame)
    wait_for(lambda: driver.find_elements(By.ID, "coverage-chart"))


def fetch(driver: Any, path: str) -> dict[str, Any]:
    """A same-origin request from the signed-in page (its cookie, nothing else)."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'})"
        ".then(async r => done({status: r.status, text: await r.text()}));", path)


def test_the_view_shows_coverage_runs_and_queue_as_linkage_status_does(
        page: Any, airflow: LocalAirflow, runs: dict[str, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By

    open_view(page, airflow)
    cli = subprocess.run([sys.executable, "-m", "linkage.cli.main", "status", "--json", "--uri", airflow.mongo_uri,
                          "--db", "app"], capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)
    status = last_json(cli.stdout)
    for relation, cov in status["coverage"].items():
        row = page.find_element(By.CSS_SELECTOR, f"tr[data-relation='{relation}']")
        assert row.find_element(By.CSS_SELECTOR, ".ratio").text == f"{cov['ratio'] * 100:.2f}%"
    shown = [row.get_attribute("data-run") for row in page.find_elements(By.CSS_SELECTOR, "tr[data-run]")]
    assert shown == [run["_id"] for run in status["recent_runs"]]
    dry = page.find_element(By.CSS_SELECTOR, f"tr[data-run='linkage_migration:{runs['dry']['dag_run_id']}']")
    assert "DRY RUN" in dry.text
    kept = page.find_element(By.CSS_SELECTOR, f"tr[data-run='linkage_migration:{runs['kept']['dag_run_id']}']")
    record = linkage_db(airflow).linkage_runs.find_one({"_id": f"linkage_migration:{runs['kept']['dag_run_id']}"})
    for step, data in record["steps"].items():
        assert f"{step} {data['counts']['linked']:,}" in kept.text
    total = sum(n for counts in status["open_review_items"].values() for n in counts.values())
    assert f"{total:,} items" in page.find_element(By.ID, "review").text
    page.save_screenshot(str(SCREENSHOTS / "linkage-view.png"))


def test_the_review_queue_exports_as_the_database_holds_it(
        page: Any, airflow: LocalAirflow, runs: dict[str, dict[str, Any]]) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_view(page, airflow)
    Select(page.find_element(By.NAME, "step")).select_by_value("user_customer")
    Select(page.find_element(By.NAME, "category")).select_by_value("conflict")
    page.find_element(By.XPATH, "//button[normalize-space()='Show']").click()

    def filtered_export() -> str | None:
        """The export link of the filtered page, once it has loaded (the old page's link goes stale)."""
        try:
            links = page.find_elements(By.ID, "export-csv")
            href = links[0].get_attribute("href") if links else None
        except StaleElementReferenceException:
            return None
        return href if href and "category=conflict" in href else None
    link = wait_for(filtered_export)
    assert "step=user_customer" in link and "category=conflict" in link
    exported = [row.cells for row in read_rows(fetch(page, link)["text"], ["item_id"])]
    in_db = linkage_db(airflow).linkage_review.find({"step": "user_customer", "category": "conflict", "status": "open"})
    assert sorted(row["item_id"] for row in exported) == sorted(str(item["_id"]) for item in in_db)
    assert exported and {row["category"] for row in exported} == {"conflict"}


def test_the_views_api_refuses_a_request_without_a_login(airflow: LocalAirflow) -> None:
    for path in ("/linkage/", "/linkage/api/status", "/linkage/review.csv", "/linkage/api/runs"):
        answer = httpx.get(f"{airflow.base}{path}")
        assert answer.status_code == 401, path
        assert "coverage" not in answer.text


def test_a_rolled_back_run_fails_its_dag_run_and_its_data_docs_open_offline(
        page: Any, airflow: LocalAirflow, runs: dict[str, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By

    failed = runs["failed"]
    assert failed["state"] == "failed"
    assert failed["note"].startswith("rolled back: order_coverage observed ")
    assert failed["note"].endswith(", expected >= 0.999")
    assert runs["kept"]["state"] == runs["dry"]["state"] == runs["nightly"]["state"] == "success"
    assert runs["dry"]["note"].startswith("dry run: would link ")

    open_view(page, airflow)
    row = page.find_element(By.CSS_SELECTOR, f"tr[data-run='linkage_migration:{failed['dag_run_id']}']")
    assert "rolled_back" in row.text and "Roll back this run" not in row.text
    docs = row.find_element(By.CSS_SELECTOR, "a.docs").get_attribute("href")
    assert urlsplit(docs).netloc == urlsplit(airflow.base).netloc
    page.switch_to.default_content()
    seen = load(page, docs)
    hosts = {urlsplit(r["url"]).netloc for r in seen.values() if r.get("url", "").startswith("http")}
    assert hosts == {urlsplit(airflow.base).netloc}, hosts
    assert not [r for r in seen.values() if r.get("failed") or r.get("status", 200) >= 400]
    navbar = page.execute_script("const n = document.querySelector('nav.navbar');"
                                 "return n && getComputedStyle(n).display;")
    assert navbar == "flex"  # bootstrap's stylesheet applied
    result = re.search(r"validations/linkage_run/[^'\"]+\.html", page.page_source)  # the run suite's row
    assert result, "the index lists this run's validation result"
    seen = load(page, f"{docs.rsplit('/', 1)[0]}/{result.group(0)}")
    assert {urlsplit(r["url"]).netloc for r in seen.values() if r.get("url", "").startswith("http")} == hosts
    text = page.find_element(By.TAG_NAME, "body").text
    assert "order_coverage" in text and "0.999" in text and "Failed" in text

    page.get(f"{airflow.base}/dags/linkage_migration/runs/{failed['dag_run_id']}")
    wait_for(lambda: "rolled back: order_coverage" in page.page_source)
    page.save_screenshot(str(SCREENSHOTS / "rolled-back-run.png"))


def test_roll_back_from_the_view_and_an_unknown_id_fails_without_a_rollback_alert(
        page: Any, airflow: LocalAirflow, runs: dict[str, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By

    db = linkage_db(airflow)
    run_id = f"linkage_migration:{runs['kept']['dag_run_id']}"
    linked_before = db.delivery_statuses.count_documents({"order_id": {"$gt": ""}})
    open_view(page, airflow)
    page.find_element(By.CSS_SELECTOR, f"tr[data-run='{run_id}'] a.rollback").click()
    field = wait_for(lambda: page.find_elements(By.ID, "run-id"))[0]
    assert field.get_attribute("value") == run_id
    page.find_element(By.ID, "trigger").click()
    page.switch_to.default_content()
    wait_for(lambda: "/dags/linkage_rollback/runs/" in page.current_url)
    rollback_run = unquote(page.current_url.rsplit("/runs/", 1)[1].split("?")[0])
    done = airflow.wait("linkage_rollback", rollback_run)
    assert done["state"] == "success", done
    assert db.linkage_runs.find_one({"_id": run_id})["state"] == "rolled_back"
    assert db.delivery_statuses.count_documents({"order_id": {"$gt": ""}}) < linked_before
    page.get(f"{airflow.base}/dags/linkage_migration/runs/{runs['kept']['dag_run_id']}")
    time.sleep(3)
    page.save_screenshot(str(SCREENSHOTS / "grid.png"))

    unknown = airflow.run("linkage_rollback", {"run_id": "manual__no-such-run"})
    assert unknown["state"] == "failed"
    assert db.linkage_alerts.count_documents({"event": "rollback_failed"}) == 0


def test_no_page_the_view_serves_shows_a_phone_or_an_email(
        page: Any, airflow: LocalAirflow, runs: dict[str, dict[str, Any]]) -> None:
    db = linkage_db(airflow)
    raw = set()
    for name in ("users", "customers_v2"):
        for doc in db[name].find({}, {"phone": 1, "email": 1}):
            raw |= {str(v).strip() for v in (doc.get("phone"), doc.get("email")) if v and len(str(v).strip()) >= 8}
    assert len(raw) > 100
    open_view(page, airflow)
    served = [page.page_source]
    paths = ["/linkage/?status=", "/linkage/?status=&page=2&size=500", "/linkage/review.csv?status=",
             "/linkage/api/status", "/linkage/api/runs", "/linkage/api/review?status=&size=500", "/linkage/api/alerts"]
    paths += [f"/linkage/rollback?run_id={run['_id']}" for run in db.linkage_runs.find({}, {"_id": 1})]
    paths += [f"/linkage/findings?run_id={run['_id']}" for run in db.linkage_runs.find({"dry_run": True}, {"_id": 1})]
    paths += [f"/linkage/api/item?item_id={item['_id']}" for item in db.linkage_review.find({}, {"_id": 1}).limit(20)]
    record = db.linkage_runs.find_one({"validation": {"$ne": None}, "dry_run": False})
    site = f"/linkage/docs/{record['validation']['data_docs'].rsplit('/', 1)[0]}"
    paths += [f"{site}/index.html"]
    for path in paths:
        answer = fetch(page, path)
        assert answer["status"] == 200, path
        served.append(answer["text"])
    text = "\n".join(served)
    assert sorted(value for value in raw if value in text) == []
    assert json.loads(fetch(page, "/linkage/api/status")["text"])["db"] == "app"


def show_queue(driver: Any, airflow: LocalAirflow, step: str, category: str, status: str = "open",
               probability: str | None = None) -> None:
    """The view's review queue filtered as a person filters it (the form: step, category, status, and the
    minimum probability when given), waiting for the new page."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_view(driver, airflow)
    Select(driver.find_element(By.NAME, "step")).select_by_value(step)
    Select(driver.find_element(By.NAME, "category")).select_by_value(category)
    Select(driver.find_element(By.NAME, "status")).select_by_value(status)
    if probability is not None:
        field = driver.find_element(By.NAME, "min_probability")
        field.clear()
        field.send_keys(probability)
    driver.find_element(By.XPATH, "//button[normalize-space()='Show']").click()
    wanted = [f"category={category}", f"status={status}", *([f"min_probability={probability}"] if probability else [])]

    def filtered() -> bool:
        try:
            href = driver.find_element(By.ID, "export-csv").get_attribute("href") or ""
        except StaleElementReferenceException:
            return False
        return all(part in href for part in wanted)
    wait_for(filtered)


def test_a_backlog_is_decided_from_the_keyboard_as_the_signed_in_user(
        page: Any, airflow: LocalAirflow, runs: dict[str, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    db = linkage_db(airflow)
    show_queue(page, airflow, "order_delivery", "ambiguous")
    rows = page.find_elements(By.CSS_SELECTOR, "tr.item")
    items = [row.get_attribute("data-item") for row in rows[:3]]
    assert len(items) == 3
    second = page.find_elements(By.CSS_SELECTOR, "tr.item")[0].find_elements(By.CSS_SELECTOR, "input[type=radio]")[1]
    page.find_element(By.TAG_NAME, "body").send_keys("j")  # the first item's first choice
    page.switch_to.active_element.send_keys("2")  # its second candidate
    page.switch_to.active_element.send_keys(Keys.ENTER)  # saved; on to the next item
    wait_for(lambda: "saved" in rows[0].find_element(By.CSS_SELECTOR, ".outcome").text)
    assert page.switch_to.active_element.get_attribute("name") == "decision"
    page.switch_to.active_element.send_keys("n")
    page.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(lambda: "saved" in rows[1].find_element(By.CSS_SELECTOR, ".outcome").text)
    page.switch_to.active_element.send_keys("n")
    note = rows[2].find_element(By.NAME, "note")
    note.send_keys("no such order in the shop's books", Keys.ENTER)
    wait_for(lambda: "saved" in rows[2].find_element(By.CSS_SELECTOR, ".outcome").text)
    page.save_screenshot(str(SCREENSHOTS / "review-decisions.png"))

    decided = {d["item_id"]: d for d in db.linkage_decisions.find({"item_id": {"$in": items}})}
    assert [(decided[i]["kind"], decided[i]["by"], decided[i]["via"]) for i in items] == [
        ("link", "airflow:admin", "view"), ("none", "airflow:admin", "view"), ("none", "airflow:admin", "view")]
    assert decided[items[0]]["target"] == second.get_attribute("value") and decided[items[0]]["candidate"]
    assert decided[items[2]]["note"] == "no such order in the shop's books"
    assert db.linkage_review.count_documents({"_id": {"$in": items}, "status": "decided"}) == 3
    show_queue(page, airflow, "order_delivery", "ambiguous")  # closed items leave the open queue
    assert not set(items) & {r.get_attribute("data-item") for r in page.find_elements(By.CSS_SELECTOR, "tr.item")}


def test_a_filled_in_export_is_imported_in_the_view_all_or_nothing(
        page: Any, airflow: LocalAirflow, runs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    db = linkage_db(airflow)
    show_queue(page, airflow, "user_customer", "ambiguous")
    link = page.find_element(By.ID, "export-csv").get_attribute("href")
    rows = [row.cells for row in read_rows(fetch(page, link)["text"], ["item_id"])]
    chosen = rows[0]
    for decision, name in (("no-such-customer", "bad.csv"), (chosen["candidates"].split("|")[0], "good.csv")):
        chosen["decision"] = decision
        (tmp_path / name).write_text("".join(write_rows(list(rows[0]), rows)), newline="")
    page.find_element(By.ID, "import-file").send_keys(str(tmp_path / "bad.csv"))
    page.find_element(By.ID, "import").click()
    wait_for(lambda: "refused" in page.find_element(By.ID, "import-outcome").text)
    page.execute_script("document.getElementById('review').scrollIntoView()")
    page.save_screenshot(str(SCREENSHOTS / "review-import-refused.png"))
    assert "line 2: 'no-such-customer' is neither a candidate" in page.find_element(By.ID, "import-refused").text
    assert db.linkage_decisions.count_documents({"item_id": chosen["item_id"]}) == 0
    page.find_element(By.ID, "import-file").clear()
    page.find_element(By.ID, "import-file").send_keys(str(tmp_path / "good.csv"))
    page.find_element(By.ID, "import").click()
    wait_for(lambda: "recorded 1 decision " in page.find_element(By.ID, "import-outcome").text)
    page.execute_script("document.getElementById('review').scrollIntoView()")
    page.save_screenshot(str(SCREENSHOTS / "review-import.png"))
    stored = db.linkage_decisions.find_one({"item_id": chosen["item_id"]})
    assert (stored["kind"], stored["target"], stored["by"], stored["via"]) == (
        "link", chosen["decision"], "airflow:admin", "csv")


@pytest.fixture(scope="module")
def reviewer(airflow: LocalAirflow, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A second person's browser, signed in as `reviewer` (scripts/airflow.sh's second user): the approver."""
    from selenium.webdriver.common.by import By

    with chromium(tmp_path_factory.mktemp("reviewer-profile")) as driver:
        driver.get(f"{airflow.base}/")
        wait_for(lambda: driver.find_elements(By.NAME, "username"))
        driver.find_element(By.NAME, "username").send_keys("reviewer")
        driver.find_element(By.NAME, "password").send_keys(airflow.password_of("reviewer"))
        driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
        wait_for(lambda: "/auth/login" not in driver.current_url and driver.get_cookie("_token"))
        yield driver


DECISIONS_DAG = "linkage_apply_decisions"
DELIVERY_COVERAGE = "delivery_statuses.order_id"


def decide_in_the_view(driver: Any, airflow: LocalAirflow) -> tuple[str, str]:
    """As the signed-in user: the first open ambiguous delivery, its last candidate chosen, Save.
    Returns (item id, the candidate's id)."""
    from selenium.webdriver.common.by import By

    show_queue(driver, airflow, "order_delivery", "ambiguous")
    row = driver.find_elements(By.CSS_SELECTOR, "tr.item")[0]
    candidates = [c for c in row.find_elements(By.CSS_SELECTOR, "input[type=radio][name=decision]")
                  if c.get_attribute("value") not in ("none", "clear", "")]
    assert len(candidates) >= 2, "an ambiguous item lists its candidates"
    chosen = str(candidates[-1].get_attribute("value"))
    candidates[-1].click()
    row.find_element(By.XPATH, ".//button[normalize-space()='Save']").click()
    wait_for(lambda: "saved" in row.find_element(By.CSS_SELECTOR, ".outcome").text)
    return str(row.get_attribute("data-item")), chosen


def coverage_shown(driver: Any, airflow: LocalAirflow, relation: str) -> float:
    from selenium.webdriver.common.by import By

    open_view(driver, airflow)
    ratio = driver.find_element(By.CSS_SELECTOR, f"tr[data-relation='{relation}'] .ratio").text
    return float(ratio.rstrip("%"))


def awaiting_approval(airflow: LocalAirflow, run_id: str, timeout: float = 180) -> int:
    """Until the run's `approve` task waits for a person (Airflow 3.3: `awaiting_input`), and still does
    on the same try 5 s later (as a person would take); returns its try number. (A response seconds
    after the task parked was lost here once: the resumed task was killed as "running elsewhere",
    retried, and asked again.)"""
    def parked() -> dict[str, Any] | None:
        found: dict[str, Any] = airflow.api("GET", f"dags/{DECISIONS_DAG}/dagRuns/{run_id}/taskInstances/approve")
        assert found["state"] not in ("failed", "upstream_failed", "skipped"), found
        return found if found["state"] == "awaiting_input" else None
    first = wait_for(parked, timeout)
    time.sleep(5)
    again = wait_for(parked, timeout)
    assert again["try_number"] == first["try_number"], (first, again)
    return int(again["try_number"])


def resumed(airflow: LocalAirflow, run_id: str, try_number: int, timeout: float = 120) -> None:
    """Until the answered `approve` task has left `awaiting_input` on the same try (not asked again)."""
    def moved_on() -> bool:
        found = airflow.api("GET", f"dags/{DECISIONS_DAG}/dagRuns/{run_id}/taskInstances/approve")
        assert found["try_number"] == try_number, f"Airflow asked again (try {found['try_number']}): {found}"
        return bool(found["state"] != "awaiting_input")
    wait_for(moved_on, timeout)


def answer_in_required_actions(driver: Any, airflow: LocalAirflow, run_id: str, user: str, button: str,
                               screenshot: str | None = None) -> tuple[str, str]:
    """As `user`, signed in to `driver`: Browse -> Required Actions, the run's request, then `button`
    (Approve or Reject) once the response is recorded. Returns the request's Markdown link to the view, and
    the page's text as the person read it before answering."""
    from selenium.webdriver.common.by import By

    driver.get(f"{airflow.base}/")
    wait_for(lambda: driver.find_elements(By.XPATH, "//button[normalize-space()='Browse']"))[0].click()
    wait_for(lambda: driver.find_elements(By.XPATH, "//a[normalize-space()='Required Actions']"))[0].click()
    wait_for(lambda: urlsplit(driver.current_url).path == "/required_actions")
    row = f"//tr[.//a[normalize-space()='{run_id}']]"
    wait_for(lambda: driver.find_elements(By.XPATH, f"{row}[contains(., 'Approval Required')]"))
    if screenshot:
        driver.save_screenshot(str(SCREENSHOTS / f"{screenshot}-list.png"))
    driver.find_element(By.XPATH, f"{row}//a[contains(@href, '/tasks/approve/required_actions')]").click()
    clickable = f"//button[normalize-space()='{button}' and not(@disabled)]"
    wait_for(lambda: driver.find_elements(By.XPATH, clickable))
    link = driver.find_element(By.XPATH, "//a[normalize-space()='The decided items in the Linkage view']")
    if screenshot:
        driver.save_screenshot(str(SCREENSHOTS / f"{screenshot}.png"))
    href, text = str(link.get_attribute("href")), driver.find_element(By.TAG_NAME, "body").text
    driver.find_element(By.XPATH, clickable).click()
    answered = re.compile(rf"Response received at .* from {user}\b")
    wait_for(lambda: answered.search(driver.find_element(By.TAG_NAME, "body").text))
    return href, text


@pytest.mark.timeout(900)  # two decisions runs (admin's own approval, then reviewer's)
def test_a_decision_is_applied_once_a_second_user_approves_it_in_required_actions(
        page: Any, reviewer: Any, airflow: LocalAirflow, runs: dict[str, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By

    db = linkage_db(airflow)
    before = coverage_shown(page, airflow, DELIVERY_COVERAGE)
    item_id, chosen = decide_in_the_view(page, airflow)  # as admin
    item = db.linkage_review.find_one({"_id": item_id})
    decision = db.linkage_decisions.find_one({"item_id": item_id}, sort=[("_id", -1)])
    assert (decision["kind"], decision["target"], decision["by"], decision["status"]) == (
        "link", chosen, "airflow:admin", "pending")
    assert db.delivery_statuses.find_one({"_id": item["document_oid"]}).get("order_id") != chosen

    # four eyes: admin approving his own decisions writes none of them; they wait, saying why
    own_run = airflow.trigger(DECISIONS_DAG, {})
    asked = awaiting_approval(airflow, own_run)
    _, request = answer_in_required_actions(page, airflow, own_run, "admin", "Approve")
    assert "may be approved by anyone but admin" in request
    resumed(airflow, own_run, asked)
    done = airflow.wait(DECISIONS_DAG, own_run)
    assert done["state"] == "success", done
    assert db.delivery_statuses.find_one({"_id": item["document_oid"]}).get("order_id") != chosen
    waiting = db.linkage_decisions.find_one({"_id": decision["_id"]})
    assert (waiting["status"], waiting["status_reason"]) == (
        "pending", "admin cannot approve a decision of their own: it waits for another person's approval")
    record = db.linkage_runs.find_one({"_id": f"{DECISIONS_DAG}:{own_run}"})
    assert record["decisions"]["approval"]["own"] >= 1 and record["decisions"]["approval"]["decisions"] == 0
    assert "left pending: admin's own, another person must approve them" in done["note"]
    shown = json.loads(fetch(page, f"/linkage/api/item?item_id={item_id}")["text"])
    assert shown["decisions"][0]["status_reason"].startswith("admin cannot approve a decision of their own")

    dag_run = airflow.trigger(DECISIONS_DAG, {})
    asked = awaiting_approval(airflow, dag_run)
    assert db.delivery_statuses.find_one({"_id": item["document_oid"]}).get("order_id") != chosen  # not yet
    link, _ = answer_in_required_actions(reviewer, airflow, dag_run, "reviewer", "Approve",
                                         screenshot="approval-request")
    resumed(airflow, dag_run, asked)
    assert urlsplit(link).netloc == urlsplit(airflow.base).netloc  # the request's link opens the view signed in
    linked = fetch(reviewer, link)
    assert linked["status"] == 200 and item_id in linked["text"]
    done = airflow.wait(DECISIONS_DAG, dag_run)
    assert done["state"] == "success", done

    assert db.delivery_statuses.find_one({"_id": item["document_oid"]})["order_id"] == chosen
    record = db.linkage_runs.find_one({"_id": f"{DECISIONS_DAG}:{dag_run}"})
    assert record["state"] == "succeeded"
    assert (record["decisions"]["approval"]["approved"], record["decisions"]["approval"]["by"]) == (True, "reviewer")
    assert record["decisions"]["outcome"]["applied"] >= 1
    assert any(d["by"] == "airflow:admin" and d["count"] >= 1  # a list: a name is never a key
               for d in record["decisions"]["preview"]["deciders"])
    assert db.linkage_decisions.find_one({"_id": decision["_id"]})["status"] == "applied"
    assert {"by": "airflow:admin", "approved_by": "reviewer"} in [
        {k: p[k] for k in ("by", "approved_by")} for p in record["decisions"]["people"]]
    assert db.linkage_decisions.find_one({"_id": decision["_id"]})["approved_by"] == "reviewer"
    assert "decisions" in done["note"] and "applied" in done["note"]

    assert coverage_shown(page, airflow, DELIVERY_COVERAGE) > before
    show_queue(page, airflow, "order_delivery", "ambiguous", status="decided")
    rows = page.find_elements(By.CSS_SELECTOR, f"tr.item[data-item='{item_id}']")
    assert rows, "the decided item is listed under status decided"
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", rows[0])
    assert rows[0].find_element(By.CSS_SELECTOR, ".state .badge").text == "decided"
    assert f"link {chosen}" in rows[0].find_element(By.CSS_SELECTOR, ".decided").text
    page.save_screenshot(str(SCREENSHOTS / "review-decided.png"))
    shown = json.loads(fetch(page, f"/linkage/api/item?item_id={item_id}")["text"])
    assert shown["item"]["status"] == "decided" and shown["decisions"][0]["status"] == "applied"


def test_a_decisions_run_whose_approval_is_rejected_writes_nothing_and_rejects_its_decisions(
        page: Any, reviewer: Any, airflow: LocalAirflow, runs: dict[str, dict[str, Any]]) -> None:
    db = linkage_db(airflow)
    item_id, chosen = decide_in_the_view(page, airflow)
    item = db.linkage_review.find_one({"_id": item_id})
    decision = db.linkage_decisions.find_one({"item_id": item_id}, sort=[("_id", -1)])
    document = db.delivery_statuses.find_one({"_id": item["document_oid"]})
    linked = db.delivery_statuses.count_documents({"order_id": {"$gt": ""}})

    dag_run = airflow.trigger(DECISIONS_DAG, {})
    asked = awaiting_approval(airflow, dag_run)
    answer_in_required_actions(reviewer, airflow, dag_run, "reviewer", "Reject")
    resumed(airflow, dag_run, asked)
    done = airflow.wait(DECISIONS_DAG, dag_run)
    assert done["state"] == "success", done  # a refusal is an answer, not a failure

    assert db.delivery_statuses.find_one({"_id": item["document_oid"]}) == document
    assert db.delivery_statuses.count_documents({"order_id": {"$gt": ""}}) == linked
    record = db.linkage_runs.find_one({"_id": f"{DECISIONS_DAG}:{dag_run}"})
    assert record["state"] == "rejected"
    assert (record["decisions"]["approval"]["approved"], record["decisions"]["approval"]["by"]) == (False, "reviewer")
    assert record["decisions"]["outcome"] == {"rejected": 1}
    assert not record.get("backup"), "a rejected run backs nothing up: it never got past the approval"
    stored = db.linkage_decisions.find_one({"_id": decision["_id"]})
    assert (stored["status"], stored["status_reason"]) == ("rejected", "rejected by reviewer")
    shown = json.loads(fetch(page, f"/linkage/api/item?item_id={item_id}")["text"])
    assert shown["decisions"][0]["status"] == "rejected" and shown["decisions"][0]["target"] == chosen
    assert shown["item"]["status"] == "open" and "rejected by reviewer" in (shown["item"]["reopened"] or "")
    tasks = {ti["task_id"]: ti["state"] for ti in airflow.api(
        "GET", f"dags/{DECISIONS_DAG}/dagRuns/{dag_run}/taskInstances")["task_instances"]}
    assert tasks["approve"] == "success" and tasks["backfill_user_customer.write_decided"] == "skipped", tasks
