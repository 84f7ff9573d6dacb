"""Issue 28 point 3: suggestions accepted in bulk (`linkage decide --accept-suggestions`), filtered by probability,
and carried in the CSV export; a decided item's export says its decision and reads back as it was.

Against the real wire server on seeded data after `migrate`. The suggestions are written onto the open items
by hand here, in the stored shape `linkage.core.evidence` defines (the `suggest` stage writes the same), so what
is accepted is known exactly.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from linkage.core.csvsafe import read_rows, write_rows
from linkage.core.evidence import NONE
from linkage.core.models import Category
from linkage.core.settings import Settings
from linkage.review import acceptance as accepting
from linkage.review.acceptance import CountChanged, accept_suggestions, holding
from linkage.review.intake import DecisionsRefused, import_csv
from linkage.review.pages import EXPORT_COLUMNS, ReviewFilter, review_csv, review_page
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate

from helpers import last_json, raw_bytes, run_cli
from suggested import plant_suggestions

BAR = 0.9


@pytest.fixture
def suggested(lk: Linkage, db: Database, seeded: dict) -> dict[str, dict[str, Any]]:
    migrate(lk, MigrationParams(), "test")
    return plant_suggestions(lk.reviews.coll)


def at_or_above(stored: dict[str, dict[str, Any]], bar: float) -> dict[str, str]:
    return {item_id: s["target"] for item_id, s in stored.items() if s["probability"] >= bar}


def test_the_filter_and_its_counts_honour_the_minimum_probability(
        lk: Linkage, settings: Settings, suggested: dict[str, dict[str, Any]]) -> None:
    expected = at_or_above(suggested, BAR)
    page = review_page(lk, ReviewFilter(min_probability=BAR), size=500)
    assert page.total == page.counts["open"] == len(expected) == holding(lk, ReviewFilter(), BAR)
    assert {row.item_id for row in page.items} == set(expected)
    assert all(row.suggestion and row.suggestion.probability >= BAR for row in page.items)
    assert review_page(lk, ReviewFilter(min_probability=0), size=500).total == len(suggested)
    exported = run_cli(settings, "review", "--csv", "--min-probability", str(BAR))
    assert exported.returncode == 0, exported.stderr
    assert {row.cells["item_id"] for row in read_rows(exported.stdout, ["item_id"])} == set(expected)
    wrong = run_cli(settings, "review", "--min-probability", "2")
    assert wrong.returncode == 1 and wrong.stderr.strip().endswith("0 to 1, not 2")
    with pytest.raises(ValueError):
        ReviewFilter(min_probability=1.5)


def test_decide_accept_suggestions_records_exactly_those_at_or_above_the_bar_and_writes_nothing_to_the_app(
        lk: Linkage, db: Database, settings: Settings, suggested: dict[str, dict[str, Any]]) -> None:
    app_before = raw_bytes(db)
    for wrong, said in ((["--min-probability", "1.2"], "0 to 1, not 1.2"), ([], "needs --min-probability"),
                        (["--min-probability", "0.9", "--file", "x.csv"], "not both")):
        done = run_cli(settings, "decide", "--accept-suggestions", *wrong)
        assert done.returncode == 1 and said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert lk.decisions.coll.count_documents({}) == 0

    done = run_cli(settings, "decide", "--accept-suggestions", "--min-probability", str(BAR), "--step",
                   "order_delivery")
    assert done.returncode == 0, done.stderr
    delivery = {i: t for i, t in at_or_above(suggested, BAR).items()
                if lk.reviews.coll.find_one({"_id": i})["step"] == "order_delivery"}
    assert f"accepting {len(delivery):,} suggestions at p >= 0.9 (0.900 to 0.990)" in done.stdout
    assert f"recorded {len(delivery):,} decisions" in done.stdout
    recorded = {d.item_id: d for d in lk.decisions.pending()}
    assert {i: d.target or NONE for i, d in recorded.items()} == delivery
    assert {(d.by.startswith("cli:"), d.via) for d in recorded.values()} == {(True, "cli")}
    assert all(d.note and d.note.startswith("accepted the suggestion (p 0.9") for d in recorded.values())

    done = run_cli(settings, "decide", "--accept-suggestions", "--min-probability", str(BAR), "--json")
    assert done.returncode == 0, done.stderr
    shown = last_json(done.stdout)
    everything = at_or_above(suggested, BAR)
    assert shown["decided"] == len(everything) - len(delivery) == shown["preview"]["taken"]
    assert {d.item_id: d.target or NONE for d in lk.decisions.pending()} == everything
    assert raw_bytes(db) == app_before, "accepting suggestions writes nothing to the app's collections"
    again = run_cli(settings, "decide", "--accept-suggestions", "--min-probability", str(BAR))
    assert again.returncode == 1 and "nothing to accept" in again.stderr


def test_accepting_refuses_a_changed_count_and_takes_at_most_the_cap(
        lk: Linkage, suggested: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    held = holding(lk, ReviewFilter(), BAR)
    with pytest.raises(CountChanged, match=f"holds {held:,} items now, not the {held + 1:,} shown"):
        accept_suggestions(lk, ReviewFilter(), BAR, by="airflow:alice", via="view", expected=held + 1)
    assert lk.decisions.coll.count_documents({}) == 0
    monkeypatch.setattr(accepting, "MAX_DECISIONS", 3)
    first = accept_suggestions(lk, ReviewFilter(), BAR, by="airflow:alice", via="view", expected=held)
    assert (first.decided, first.held, first.left) == (3, held, held - 3)
    assert holding(lk, ReviewFilter(), BAR) == held - 3
    with pytest.raises(DecisionsRefused, match="no decision to record"):
        accept_suggestions(lk, ReviewFilter(step="order_delivery", category=Category.UNMATCHED), BAR,
                           by="airflow:alice", via="view")


def rows_of(lk: Linkage, selected: ReviewFilter) -> list[dict[str, str]]:
    return [row.cells for row in read_rows("".join(review_csv(lk, selected)), ["item_id"])]


def test_the_export_carries_the_suggestion_and_a_decided_items_decision_and_reads_back_as_it_was(
        lk: Linkage, suggested: dict[str, dict[str, Any]]) -> None:
    rows = rows_of(lk, ReviewFilter(category=Category.AMBIGUOUS))
    assert list(rows[0]) == EXPORT_COLUMNS
    for row in rows:
        s = suggested[row["item_id"]]
        assert (row["suggested"], row["match_probability"]) == (s["target"], f"{s['probability']:.3f}")
        assert row["evidence"] == "prior -1.0; status equal +4.5" and row["decision"] == row["note"] == ""
    assert {row["suggested"] for row in rows_of(lk, ReviewFilter(category=Category.UNMATCHED))} == {""}

    chosen = rows[:4]
    for row in chosen:  # a spreadsheet user copies `suggested` into `decision`; the evidence column is ignored
        row["decision"], row["note"], row["evidence"] = row["suggested"], "as suggested", "=HYPERLINK(1)"
    recorded = import_csv(lk, "".join(write_rows(EXPORT_COLUMNS, chosen)), by="cli:alice@host", via="cli")
    assert recorded.decided == 4 and recorded.unchanged == 0
    assert {d.item_id: d.target or NONE for d in lk.decisions.pending()} == {r["item_id"]: r["suggested"]
                                                                           for r in chosen}

    decided = rows_of(lk, ReviewFilter(status="decided"))
    assert {(r["item_id"], r["decision"], r["note"]) for r in decided} == {
        (r["item_id"], r["suggested"], "as suggested") for r in chosen}
    text = "".join(write_rows(EXPORT_COLUMNS, decided))
    again = import_csv(lk, text, by="cli:bob@host", via="cli")  # read back as exported: nothing new
    assert (again.decided, again.unchanged) == (0, 4) and lk.decisions.coll.count_documents({}) == 4
    decided[0]["decision"] = next(c for c in [NONE, *rows[0]["candidates"].split("|")] if c != decided[0]["decision"])
    changed = import_csv(lk, "".join(write_rows(EXPORT_COLUMNS, decided)), by="cli:bob@host", via="cli")
    assert (changed.decided, changed.unchanged) == (1, 3)
    assert [d.target or NONE for d in lk.decisions.pending() if d.item_id == decided[0]["item_id"]] == [
        decided[0]["decision"]]
