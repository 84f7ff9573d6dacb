"""Headless Chromium for the tests (Debian's chromium and chromium-driver, installed by `make system-deps`):
a driver that logs every network request, and a page load that reports them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A Chromium that keeps a performance (network) log, caches nothing, and always quits."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Debian's chromium and chromium-driver are not installed: run `make system-deps`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    # Every page load goes to the network (a cached file would make no request to log).
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    try:
        yield driver
    finally:
        driver.quit()


def requests_seen(driver: Any) -> dict[str, dict[str, Any]]:
    """What the network log saw since it was last read: request id -> {url, status, failed}."""
    seen: dict[str, dict[str, Any]] = {}
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        rid = params.get("requestId")
        if msg["method"] == "Network.requestWillBeSent":
            seen.setdefault(rid, {})["url"] = params["request"]["url"]
        elif msg["method"] == "Network.responseReceived":
            seen.setdefault(rid, {})["status"] = params["response"]["status"]
        elif msg["method"] == "Network.loadingFailed":
            seen.setdefault(rid, {})["failed"] = params.get("errorText") or "failed"
    return seen


def load(driver: Any, url: str) -> dict[str, dict[str, Any]]:
    """Open the page, wait for it and its fonts, and return the requests it made."""
    driver.get("about:blank")  # not chrome's new-tab page, whose chrome:// requests would mix in
    driver.get_log("performance")  # drop what came before
    driver.get(url)
    driver.execute_async_script("const done = arguments[0]; document.fonts.ready.then(() => done(true));")
    time.sleep(0.5)  # late requests (icons drawn after layout)
    return requests_seen(driver)


def wait_for(condition: Any, timeout: float = 30) -> Any:
    """What `condition()` returns once it is truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)
    return found


def sign_in(driver: Any, base: str, user: str, password: str) -> None:
    """Sign in to Airflow at `base` as a person does: the login form, then the session cookie."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/")
    wait_for(lambda: driver.find_elements(By.NAME, "username"))
    driver.find_element(By.NAME, "username").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
    wait_for(lambda: "/auth/login" not in driver.current_url and driver.get_cookie("_token"))
