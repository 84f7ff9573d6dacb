"""Data Docs that say what they judged (issue 23): a dry run's pages say at the top that they measured the data as
it stands and what a real run judges; every expectation is the rule's description in words, the data asset is
named, and the footer is the project's, not GX's newsletter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from linkage.relations import REGISTRY
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate
from linkage.validation.annotate import annotation

from browser import chromium, load


def pages_of(lk: Linkage, data_docs: str | None) -> tuple[Path, Path]:
    """A run's index page and its `linkage_run` validation page."""
    index = lk.settings.docs_dir / str(data_docs)
    return index, next((index.parent / "validations" / "linkage_run").rglob("*.html"))


def test_annotating_a_page_is_idempotent_and_leaves_no_gx_newsletter() -> None:
    note = annotation("run-1", dry_run=True, database="app", gx_version="1.24.1", thresholds={"min_x": 0.9})
    page = ('<body><div class="container-fluid pt-4 pb-4 pl-5 pr-5">Data asset: None<br> at least $min_x'
            "<footer>\n  <p>Stay current on everything GX with our newsletter <a href='x'>Subscribe</a></p>\n"
            "</footer></body>")
    once = note.page(page)
    assert note.page(once) == once
    assert "Subscribe" not in once and "linkage: the Data Docs of run-1" in once and "at least 0.9 (min_x)" in once
    assert once.count("measured the data as it stands") == 1 and "Data asset: None" not in once


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_dry_runs_data_docs_say_they_measured_the_data_as_it_stands(lk: Linkage, seeded: dict,
                                                                      tmp_path: Path) -> None:
    dry = migrate(lk, MigrationParams(dry_run=True), "test")
    kept = migrate(lk, MigrationParams(), "test")
    assert dry.validation and kept.validation and kept.state == "succeeded"
    judged = [rule for rule in REGISTRY.rules() if rule.judges_the_run]
    with chromium(tmp_path / "profile") as browser:
        for page in pages_of(lk, dry.validation.data_docs):
            load(browser, page.as_uri())
            text = browser.find_element("tag name", "body").text
            preface = browser.find_element("id", "linkage-preface")
            assert preface.is_displayed() and preface.location["y"] < 200, "the preface is at the top"
            assert preface.text.startswith(f"{dry.run_id} measured the data as it stands; it judged nothing.")
            assert "A real run judges what it writes" in preface.text
            assert "Subscribe" not in text and "newsletter" not in text
            assert f"linkage: the Data Docs of {dry.run_id} in database {lk.settings.db}" in text
        assert f"Data asset: linkage's measurements of database {lk.settings.db}" in text and "None" not in text
        for rule in judged:  # the validation page (the last one loaded): every rule in its own words
            assert rule.description in text, rule.name
        assert "at least 0.8 (min_order_coverage) after the run" in text
        assert "maximum value must be less than or equal to" not in text

        load(browser, pages_of(lk, kept.validation.data_docs)[1].as_uri())
        preface = browser.find_element("id", "linkage-preface").text
        assert preface.startswith(f"Run {kept.run_id} was judged on what it wrote.")
    # every page the index links to exists: the suites' pages too (they were never built, a dead link)
    index = pages_of(lk, kept.validation.data_docs)[0]
    linked = re.findall(r'<a\b[^>]*\bhref="([^"#:]+\.html)"', index.read_text(encoding="utf-8"))
    assert {"expectations/linkage_run.html", "expectations/linkage_drift.html"} <= set(linked)
    assert [href for href in linked if not (index.parent / href).is_file()] == []
