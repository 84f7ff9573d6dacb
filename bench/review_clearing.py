"""A person clears the decidable part of `make demo`'s review queue in the browser (issue 28's benchmark).

    python -m bench.review_clearing            # make bench-review
    python -m bench.review_clearing --customers 2000 --out /tmp/x.json   # smaller, for a quick look

What runs: `make airflow` (scripts/airflow.sh, through the suite's harness `tests/local_airflow.py`) on free
ports with the demo's data (`linkage seed`, 10,000 customers by default, as `make demo`), then a
`linkage_migration` run (its `suggest` stage writes each open item's suggestion). Then a person:

1. signed in as `admin` in headless Chromium, opens the Linkage view, filters the queue (step
   `order_delivery`, category `ambiguous`, min probability 0.9), reads the count and presses
   "Accept all N suggestions";
2. the same for whatever else the whole queue holds at p >= 0.9 (step and category back to "any");
3. a second person, `bob`, approves them by running `linkage apply-decisions` (the CLI's person is the
   OS login: USER=bob), which writes them.

Counted: the person's actions (clicks, keys, the command typed), the seconds each phase takes: the
machine's (the page loads, the requests and the run a person waits for, measured), plus the person's
own for those actions, by the Keystroke-Level Model (Card, Moran & Newell: 1.35 s to prepare each
action, 1.1 s to point, 0.1 s a click, 0.28 s a key), and items decided per minute. Checked: every
accepted decision is the item's suggestion, by `airflow:admin`, and the run applied them. The baseline
is issue 28's: 4.8 s per item from the keyboard, 51 minutes for the 642 ambiguous deliveries.
Results: a table on stdout and bench/results/review-clearing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the suite's harness: make airflow on free ports, headless Chromium

from browser import chromium  # noqa: E402
from local_airflow import LocalAirflow  # noqa: E402

BAR = 0.9
BASELINE_SECONDS_PER_ITEM = 4.8
#: The Keystroke-Level Model's operators (Card, Moran & Newell, 1980), in seconds: a mental preparation before
#: each action, pointing, a mouse click, a key of an average typist.
KLM = {"M": 1.35, "P": 1.1, "B": 0.1, "K": 0.28}
#: What bob types to approve and apply (then Enter).
APPLY_COMMAND = "linkage apply-decisions"
#: The filters the person accepts, in order: the ambiguous deliveries, then the rest of the queue.
PHASES = (("order_delivery", "ambiguous"), ("", ""))


class Person:
    """A browser signed in as one user, counting what the person does."""

    def __init__(self, driver: Any, airflow: LocalAirflow) -> None:
        self.driver, self.airflow = driver, airflow
        self.clicks = self.keys = 0

    def wait(self, condition: Any, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        while not (found := condition()):
            if time.monotonic() > deadline:
                raise TimeoutError("the page did not answer")
            time.sleep(0.05)
        return found

    def find(self, how: str, what: str) -> Any:
        from selenium.common.exceptions import StaleElementReferenceException

        def present() -> Any:
            try:
                found = self.driver.find_elements(how, what)
                return found[0] if found and found[0].is_displayed() else None
            except StaleElementReferenceException:
                return None
        return self.wait(present)

    def sign_in(self, user: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.get(f"{self.airflow.base}/")
        self.find(By.NAME, "username").send_keys(user)
        self.driver.find_element(By.NAME, "password").send_keys(self.airflow.password_of(user))
        self.driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
        self.wait(lambda: "/auth/login" not in self.driver.current_url and self.driver.get_cookie("_token"))

    def open_view(self) -> None:
        """Airflow's home page, then Linkage in its navigation (one click), into the view's frame."""
        from selenium.webdriver.common.by import By

        self.driver.switch_to.default_content()
        self.driver.get(f"{self.airflow.base}/")
        self.find(By.XPATH, "//a[.//*[normalize-space()='Linkage'] or normalize-space()='Linkage']").click()
        self.clicks += 1
        self.driver.switch_to.frame(self.find(By.TAG_NAME, "iframe"))
        self.find(By.ID, "coverage-chart")

    def choose(self, name: str, value: str) -> None:
        """A drop-down opened and an option picked: two clicks."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        Select(self.find(By.NAME, name)).select_by_value(value)
        self.clicks += 2

    def filter_and_accept(self, step: str, category: str) -> dict[str, Any]:
        """Filter by step, category and probability, Show, then Accept all: what was shown and recorded."""
        from selenium.webdriver.common.by import By

        self.choose("step", step)
        self.choose("category", category)
        field = self.find(By.NAME, "min_probability")
        if field.get_attribute("value") != str(BAR):
            field.clear()
            field.send_keys(str(BAR))
            self.clicks, self.keys = self.clicks + 1, self.keys + len(str(BAR))
        self.find(By.XPATH, "//button[normalize-space()='Show']").click()
        self.clicks += 1
        wanted = f"step={step}&category={category}&status=open&min_probability={BAR}"
        self.wait(lambda: wanted in (self.find(By.ID, "export-csv").get_attribute("href") or ""))
        buttons = self.driver.find_elements(By.ID, "accept-all")
        if not buttons:
            return {"shown": 0, "recorded": 0}
        shown = int(buttons[0].get_attribute("data-expected"))
        buttons[0].click()
        self.clicks += 1
        said = self.wait(lambda: (t := self.find(By.ID, "accept-outcome").text).startswith(("recorded", "refused",
                                                                                              "nothing")) and t,
                         timeout=600)
        if not said.startswith("recorded"):
            raise RuntimeError(f"bulk acceptance refused: {said}")
        return {"shown": shown, "recorded": int(said.split()[1].replace(",", "")), "outcome": said}


def apply_as(airflow: LocalAirflow, user: str) -> dict[str, Any]:
    """`linkage apply-decisions` as another OS login (the CLI's person): its JSON line."""
    env = {**os.environ, "USER": user, "LOGNAME": user, "LINKAGE_HOME": str(airflow.home)}
    done = subprocess.run([str(ROOT / ".venv/bin/linkage"), "apply-decisions", "--uri", airflow.mongo_uri, "--db",
                           "app", "--json"], capture_output=True, text=True, env=env, timeout=1800, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"apply-decisions failed: {done.stderr.strip()[-500:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def migrated(airflow: LocalAirflow) -> dict[str, int]:
    """A migration run through Airflow; then the open queue and what it suggests at the bar."""
    run = airflow.wait("linkage_migration", airflow.trigger("linkage_migration", {}), timeout=3600)
    if run["state"] != "success":
        raise RuntimeError(f"the migration ended {run['state']}")
    review = MongoClient(airflow.mongo_uri).app.linkage_review
    open_items = review.count_documents({"status": "open"})
    suggested = review.count_documents({"status": "open", "suggested_p": {"$gte": BAR}})
    if not review.count_documents({"status": "open", "suggestion": {"$exists": True}}):
        raise RuntimeError("the migration wrote no suggestion: the `suggest` stage is missing")
    return {"open_items": open_items, "suggested_at_bar": suggested,
            "ambiguous_deliveries": review.count_documents({"status": "open", "step": "order_delivery",
                                                            "category": "ambiguous"})}


def checked(airflow: LocalAirflow) -> dict[str, int]:
    """Every decision is its item's suggestion, made by admin, and applied."""
    db = MongoClient(airflow.mongo_uri).app
    decisions = list(db.linkage_decisions.find({}, {"item_id": 1, "target": 1, "kind": 1, "by": 1, "status": 1}))
    items = {i["_id"]: i for i in db.linkage_review.find({"_id": {"$in": [d["item_id"] for d in decisions]}},
                                                         {"suggestion": 1})}
    wrong = [d for d in decisions if (d.get("target") or "none") != items[d["item_id"]]["suggestion"]["target"]
             or d["by"] != "airflow:admin"]
    if wrong:
        raise RuntimeError(f"{len(wrong)} decisions are not the suggestion admin accepted: {wrong[:3]}")
    return {"decisions": len(decisions), "applied": sum(d["status"] == "applied" for d in decisions)}


def clear_queue(airflow: LocalAirflow, profile: Path) -> dict[str, Any]:
    """The person's part, timed phase by phase."""
    phases: list[dict[str, Any]] = []
    with chromium(profile) as driver:
        person = Person(driver, airflow)
        person.sign_in("admin")
        for step, category in PHASES:
            started, clicks, keys = time.monotonic(), person.clicks, person.keys
            person.open_view()
            done = person.filter_and_accept(step, category)
            phases.append({"filter": {"step": step or "any", "category": category or "any", "min_probability": BAR},
                           **done, "clicks": person.clicks - clicks, "keys": person.keys - keys,
                           "seconds": round(time.monotonic() - started, 2)})
    started = time.monotonic()
    applied = apply_as(airflow, "bob")
    phases.append({"apply-decisions as bob": applied.get("decisions", {}).get("outcome"), "commands": 1,
                   "keys": len(APPLY_COMMAND) + 1, "seconds": round(time.monotonic() - started, 2),
                   "run_id": applied.get("run_id"), "state": applied.get("state")})
    return {"phases": phases, **checked(airflow)}


def with_person(phase: dict[str, Any]) -> dict[str, Any]:
    """The phase with a person's time: the machine's seconds, plus the Keystroke-Level Model's for the actions
    (each click a mental preparation, a pointing and a click; the keys typed after one preparation)."""
    clicks, keys = phase.get("clicks", 0), phase.get("keys", 0)
    acting = clicks * (KLM["M"] + KLM["P"] + KLM["B"]) + (KLM["M"] if keys and not clicks else 0) + keys * KLM["K"]
    return {**phase, "person_seconds": round(phase["seconds"] + acting, 1)}


def summary(queue: dict[str, int], cleared: dict[str, Any]) -> dict[str, Any]:
    phases = [with_person(p) for p in cleared["phases"]]
    seconds = sum(p["person_seconds"] for p in phases)
    decided = sum(p.get("recorded", 0) for p in phases)
    deliveries, apply = phases[0], phases[-1]
    return {"queue": queue, **cleared, "phases": phases, "klm_seconds": KLM, "person": {
        "clicks": sum(p.get("clicks", 0) for p in phases), "keys": sum(p.get("keys", 0) for p in phases),
        "commands": 1, "machine_seconds": round(sum(p["seconds"] for p in phases), 1),
        "seconds": round(seconds, 1), "decided": decided,
        "items_per_minute": round(decided / seconds * 60) if seconds else None,
        "ambiguous_deliveries": deliveries["recorded"],
        "ambiguous_deliveries_seconds": round(deliveries["person_seconds"] + apply["person_seconds"], 1),
        "baseline_minutes_for_those": round(deliveries["recorded"] * BASELINE_SECONDS_PER_ITEM / 60, 1)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000, help="customers seeded (default: make demo's)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "review-clearing.json"))
    parser.add_argument("--keep", action="store_true", help="keep the Airflow home and its database afterwards")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="linkage-bench-review-"))
    airflow = LocalAirflow(home, customers=args.customers)
    try:
        airflow.start(within=900)
        queue = migrated(airflow)
        result = summary(queue, clear_queue(airflow, home / "profile"))
    finally:
        airflow.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    person = result["person"]
    print(f"review queue after the migration: {queue['open_items']:,} open, {queue['suggested_at_bar']:,} suggested at "
          f"p >= {BAR}, {queue['ambiguous_deliveries']:,} ambiguous deliveries")
    for phase in result["phases"]:
        print("  " + json.dumps(phase))
    print(f"the person: {person['clicks']} clicks, {person['keys']} keys, {person['commands']} command; "
          f"{person['machine_seconds']} s of the machine's, {person['seconds']} s with the actions' own "
          f"(Keystroke-Level Model) for {person['decided']:,} decisions ({person['items_per_minute']:,} a minute)")
    print(f"the {person['ambiguous_deliveries']:,} ambiguous deliveries at p >= {BAR}, with their apply: "
          f"{person['ambiguous_deliveries_seconds']} s, where 4.8 s an item made "
          f"{person['baseline_minutes_for_those']} minutes")
    print(f"checked: {result['decisions']:,} decisions, each its item's suggestion by airflow:admin; "
          f"{result['applied']:,} applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
