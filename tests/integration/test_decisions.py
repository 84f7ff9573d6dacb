"""Issue 19: every review item says what a person needs to decide, and what a person decides is recorded.

Against the real wire server on seeded data after `migrate`: each ambiguous and conflict item's candidates
equal an independent query written here; the CSV round trip (export, fill in every kind of decision, a
refused import that records nothing, a fixed one that records everything) and the items it closes; cells a
spreadsheet would run are neutralised and read back unchanged; no phone or email anywhere.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import Any

import pytest
from pymongo.database import Database

from linkage.core.csvsafe import FORMULA_STARTS, read_rows
from linkage.review.intake import MAX_NOTE, DecisionInput, DecisionsRefused, import_csv, record_decisions
from linkage.review.pages import ReviewFilter, review_csv
from linkage.run.params import MigrationParams
from linkage.run.session import Linkage
from linkage.stages.executor import migrate
from linkage.store.decisions import DecisionKind, DecisionStatus

import oracle

CANDIDATE_CATEGORIES = ("ambiguous", "conflict")


@pytest.fixture
def migrated(lk: Linkage, db: Database, seeded: dict) -> dict[str, Any]:
    return migrate(lk, MigrationParams(), "test").as_json()


def items(lk: Linkage, **query: Any) -> list[dict[str, Any]]:
    return list(lk.reviews.coll.find(query))


def order_candidates(db: Database, delivery: dict[str, Any]) -> set[str]:
    """The orders CONTRACT §3 lets a delivery be linked to, asked of the database directly."""
    day = oracle.day(delivery.get("delivery_date"))
    return {o["id"] for o in db.orders.find({"customer_id": delivery["customer_id"]})
            if o.get("status") != "cancelled" and oracle.day(o.get("delivery_date")) == day and o.get("id")}


def user_candidates(db: Database, user: dict[str, Any]) -> set[str]:
    """The customers a user's phone or email names (both, when they name different ones), or the one its link names."""
    if not oracle.unset(user.get("customer_v2_id")):
        return {user["customer_v2_id"]}
    phone, email = oracle.phone(user.get("phone")), oracle.email(user.get("email"))
    customers = list(db.customers_v2.find({}, {"id": 1, "phone": 1, "email": 1}))
    by_phone = {c["id"] for c in customers if phone and oracle.phone(c.get("phone")) == phone}
    by_email = {c["id"] for c in customers if email and oracle.email(c.get("email")) == email}
    return by_phone | by_email if by_phone and by_email and not by_phone & by_email else by_phone or by_email


def test_every_ambiguous_and_conflict_item_lists_the_candidates_an_independent_query_finds(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    listed = items(lk, category={"$in": list(CANDIDATE_CATEGORIES)})
    assert {(i["step"], i["category"]) for i in listed} >= {("order_delivery", "ambiguous"),
                                                             ("user_customer", "ambiguous"),
                                                             ("user_customer", "conflict")}
    for item in listed:
        doc = db[item["collection"]].find_one({"_id": item["document_oid"]})
        expected = order_candidates(db, doc) if item["step"] == "order_delivery" else user_candidates(db, doc)
        assert {c["id"] for c in item["candidates"]} == expected, item
        assert item["more_candidates"] == 0
    orders = {o["id"]: o for o in db.orders.find()}
    for item in items(lk, step="order_delivery", category="ambiguous"):
        for c in item["candidates"]:
            assert c["facts"]["status"] == orders[c["id"]]["status"]
            assert c["facts"]["delivery_date"] == str(oracle.day(orders[c["id"]]["delivery_date"]))
    customers = {c["id"]: c for c in db.customers_v2.find()}
    for item in items(lk, step="user_customer", category={"$in": list(CANDIDATE_CATEGORIES)}):
        for c in item["candidates"]:
            assert c["facts"]["phone_ends"] == "…" + oracle.phone(customers[c["id"]]["phone"])[-2:]
            assert c["facts"]["matched_by"] in ("phone", "email", "phone and email", "customer_v2_id")


def test_one_sided_conflict_dangling_unmatched_and_invalid_items_say_what_is_at_fault(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    for item in items(lk, category={"$in": ["one_sided", "conflict"]}):
        assert item["holders"], item
        for holder in item["holders"]:
            assert db[holder["collection"]].count_documents({"id": holder["id"]}) >= 1
    for item in items(lk, category="dangling"):
        doc = db[item["collection"]].find_one({"_id": item["document_oid"]})
        named = doc.get({"delivery_statuses": "order_id", "users": "customer_v2_id",
                         "customers_v2": "user_id"}[item["collection"]])
        assert item["missing"] == named
        target = {"delivery_statuses": "orders", "users": "customers_v2", "customers_v2": "users"}[item["collection"]]
        assert db[target].count_documents({"id": named}) == 0
    for item in items(lk, category={"$in": ["unmatched", "invalid"]}):
        assert item["field"] and item["reason"].startswith(item["field"] + ":"), item


def raw_pii(db: Database) -> set[str]:
    values = set()
    for name in ("users", "customers_v2"):
        for doc in db[name].find({}, {"phone": 1, "email": 1}):
            values |= {str(v).strip() for v in (doc.get("phone"), doc.get("email")) if v and len(str(v).strip()) >= 8}
    return values


def test_no_phone_or_email_in_any_item_or_the_export(lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    text = json.dumps(items(lk), default=str) + "".join(review_csv(lk, ReviewFilter(status=None)))
    pii = raw_pii(db)
    assert len(pii) > 100
    assert sorted(v for v in pii if v in text) == []


def export(lk: Linkage, **filters: Any) -> list[dict[str, str]]:
    """The export as a spreadsheet reads it (the neutralised cells restored)."""
    return [row.cells for row in read_rows("".join(review_csv(lk, ReviewFilter(**filters))), ["item_id"])]


def as_saved(rows: list[dict[str, str]], extra_lines: list[str] = ()) -> str:
    """What a spreadsheet saves: every column back (formula cells as text again), plus any lines typed in."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: ("'" + v if v.startswith(FORMULA_STARTS) else v) for k, v in row.items()} for row in rows)
    return buffer.getvalue() + "".join(f"{line}\r\n" for line in extra_lines)


def _pick(rows: list[dict[str, str]], **match: str) -> dict[str, str]:
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def test_the_csv_round_trip_refuses_a_bad_file_whole_then_records_the_fixed_one(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    rows = export(lk, step="order_delivery")
    assert list(rows[0])[:2] == ["item_id", "step"] and rows[0]["decision"] == rows[0]["note"] == ""
    ambiguous = _pick(rows, category="ambiguous")
    ambiguous.update(decision=ambiguous["candidates"].split("|")[1], note="the later order was delivered")
    unmatched = _pick(rows, category="unmatched")
    unmatched["decision"] = "none"
    dangling = _pick(rows, category="dangling")
    dangling.update(decision="clear", note="the order was deleted by support")
    other = [r for r in rows if r["category"] == "unmatched"][1]
    delivery = db.delivery_statuses.find_one({"id": other["document_id"]})
    another_day = db.orders.find_one({"customer_id": delivery["customer_id"]})  # exists, not a candidate
    other["decision"] = another_day["id"]
    bad = _pick(rows, category="ambiguous", decision="")
    bad["decision"] = "no-such-order"
    text = as_saved(rows, ['"order_delivery:x","malformed"'])
    lines = text.split("\r\n")
    bad_line = next(n for n, line in enumerate(lines, start=1) if "no-such-order" in line)

    with pytest.raises(DecisionsRefused) as refused:
        import_csv(lk, text, by="cli:tester@here", via="cli")
    assert [(r.line, r.reason.split(":")[0]) for r in refused.value.refusals] == [
        (bad_line, "'no-such-order' is neither a candidate of this item nor the id of an existing orders document"),
        (len(lines) - 1, "malformed row")]
    assert lk.decisions.coll.count_documents({}) == 0 and not items(lk, status="decided")

    bad["decision"] = ""
    recorded = import_csv(lk, as_saved(rows), by="cli:tester@here", via="cli")
    assert recorded.decided == 4 and recorded.by_kind == {"link": 2, "none": 1, "clear": 1}
    decided = {i["_id"]: i for i in items(lk, status="decided")}
    assert set(decided) == {ambiguous["item_id"], unmatched["item_id"], dangling["item_id"], other["item_id"]}
    stored = {d.item_id: d for d in lk.decisions.pending()}
    assert stored[ambiguous["item_id"]].target == ambiguous["decision"] and stored[ambiguous["item_id"]].candidate
    assert stored[other["item_id"]].target == another_day["id"] and not stored[other["item_id"]].candidate
    assert stored[dangling["item_id"]].kind == DecisionKind.CLEAR and stored[dangling["item_id"]].target == \
        dangling["missing"]
    assert {d.by for d in stored.values()} == {"cli:tester@here"} and stored[unmatched["item_id"]].note is None
    assert decided[ambiguous["item_id"]]["decision"]["note"] == "the later order was delivered"
    assert all(len(d.state.keys) == 2 and set(d.state.links) == {"order_id"} for d in stored.values())
    # a decision made again supersedes the pending one: the newest per item counts
    record_decisions(lk, [DecisionInput(line=1, item_id=unmatched["item_id"], decision="none", note="checked twice")],
                     by="airflow:admin", via="api")
    history = lk.decisions.history(unmatched["item_id"])
    assert [d.status for d in history] == [DecisionStatus.PENDING, DecisionStatus.SUPERSEDED]
    assert [d.note for d in lk.decisions.pending() if d.item_id == unmatched["item_id"]] == ["checked twice"]


def test_bad_decisions_are_refused_with_their_line_and_reason_and_nothing_is_recorded(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    by_category = defaultdict(list)
    for item in items(lk):
        by_category[(item["step"], item["category"])].append(item)
    ambiguous = by_category[("order_delivery", "ambiguous")][0]
    conflict = next(i for i in by_category[("user_customer", "conflict")]
                    if i["reason"] == "customer: already linked to a user")
    given = [("call 98765 43210", "none", None), (ambiguous["_id"], ambiguous["candidates"][0]["id"], None),
             (ambiguous["_id"], "none", None), (by_category[("order_delivery", "unmatched")][0]["_id"], "clear", None),
             (conflict["_id"], conflict["candidates"][0]["id"], None),
             (by_category[("order_delivery", "invalid")][0]["_id"], "none", "x" * (MAX_NOTE + 1)),
             (by_category[("user_customer", "unmatched")][0]["_id"], " ", None)]
    with pytest.raises(DecisionsRefused) as refused:
        record_decisions(lk, [DecisionInput(line=n, item_id=i, decision=d, note=note)
                              for n, (i, d, note) in enumerate(given, start=1)], by="t", via="api")
    reasons = {r.line: r.reason for r in refused.value.refusals}
    assert reasons[1] == "unknown item call ***10"  # what a person typed is echoed masked
    assert 2 not in reasons and reasons[3].startswith(f"duplicate: item {ambiguous['_id']} is decided on line 2")
    assert reasons[4] == "clear is for a dangling link; this item is unmatched"
    assert reasons[5].startswith(f"linking to {conflict['candidates'][0]['id']} would break a rule: ")
    assert reasons[6] == f"the note is longer than {MAX_NOTE} characters"
    assert reasons[7].startswith("no decision")
    assert lk.decisions.coll.count_documents({}) == 0 and not items(lk, status="decided")


def test_cells_a_spreadsheet_would_run_export_as_text_and_import_back_unchanged(lk: Linkage, db: Database) -> None:
    """Documents whose ids start with =, +, - or @: the export quotes them behind a ', the import reads them back."""
    db.customers_v2.insert_one({"id": "c1", "phone": "9876543210", "status": "active"})
    db.users.insert_one({"id": "u1", "role": "customer", "phone": "9876543210", "customer_v2_id": "c1"})
    db.customers_v2.update_one({"id": "c1"}, {"$set": {"user_id": "u1"}})
    db.orders.insert_many([{"id": oid, "customer_id": "c1", "delivery_date": "2026-05-01", "status": "confirmed"}
                           for oid in ("=1+2", "@SUM(A1)", "'quoted", "\tHYPERLINK")])
    db.delivery_statuses.insert_many([{"id": "-2+3", "customer_id": "c1", "delivery_date": "2026-05-01"},
                                      {"id": "+cmd", "customer_id": "c1", "delivery_date": "2026-05-02"}])
    migrate(lk, MigrationParams(), "test")
    raw = "".join(review_csv(lk, ReviewFilter(step="order_delivery")))
    for cells in list(csv.reader(io.StringIO(raw, newline="")))[1:]:
        assert not [c for c in cells if c.startswith(FORMULA_STARTS)], cells
    assert '"\'-2+3"' in raw and "\"'=1+2|@SUM(A1)|'quoted|\tHYPERLINK\"" in raw
    rows = export(lk, step="order_delivery")
    assert {r["document_id"] for r in rows} == {"-2+3", "+cmd"}
    ambiguous = _pick(rows, document_id="-2+3")
    assert ambiguous["candidates"].split("|") == ["=1+2", "@SUM(A1)", "'quoted", "\tHYPERLINK"]
    ambiguous["decision"] = "@SUM(A1)"
    _pick(rows, document_id="+cmd")["decision"] = "=1+2"  # another day's order of the same customer
    import_csv(lk, as_saved(rows), by="t", via="cli")
    assert sorted(d.target or "" for d in lk.decisions.pending()) == ["=1+2", "@SUM(A1)"]


def test_a_note_is_free_text_and_a_phone_or_email_in_it_is_masked(
        lk: Linkage, db: Database, migrated: dict[str, Any]) -> None:
    item = lk.reviews.coll.find_one({"category": "unmatched"})
    record_decisions(lk, [DecisionInput(line=1, item_id=item["_id"], decision="none",
                                        note="customer says call 98765 43210 or mail asha@example.com")],
                     by="t", via="api")
    stored = lk.decisions.history(item["_id"])[0].note or ""
    assert "98765 43210" not in stored and "asha@example.com" not in stored and stored.startswith("customer says")
    assert lk.reviews.coll.find_one({"_id": item["_id"]})["decision"]["note"] == stored
