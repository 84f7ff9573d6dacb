"""Splink 5 beside linkage's own suggestion model, on the same review queue (issue 28: "use Splink, or say with
measurements why a small scorer of your own is better").

Two steps, because Splink is not one of linkage's requirements (it adds duckdb, pyarrow and sqlglot: install it
into a throwaway venv, never into requirements.txt):

    .venv/bin/python -m bench.splink_compare export --uri URI --db DB --out /tmp/queue.json
    /tmp/splink-venv/bin/python bench/splink_compare.py fit /tmp/queue.json

`export` (linkage's venv) writes both sides of each relation whose items have suggestions, normalised as the
rules compare them (phones and emails as SHA-256 digests: equal or not is all either side needs), the open
ambiguous and conflict items with linkage's suggestion, and the seeded truth where there is one. `fit` (a venv
with Splink 5) trains Splink as its tutorials do (u by random sampling, m by EM per blocking rule), predicts the
pairs the rules block on, and prints per truth class (evident, unsettleable) how many items each scorer settles
at p >= 0.9, how often rightly, and how many items Splink gives two or more candidates p >= 0.5 (it scores
pairs one by one: nothing makes an item's candidates exclusive), with Splink's time and install size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

SITE = "lib/python{0}.{1}/site-packages".format(*sys.version_info[:2])


def _digest(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest()[:16] if value else None


def export(uri: str, db_name: str, out: Path) -> dict[str, int]:
    """The queue and both sides of its relations, as `fit` reads them (linkage's venv)."""
    from pymongo import MongoClient

    from linkage.core.normalize import normalize_date, normalize_email, normalize_phone
    from linkage.core.settings import Settings
    from linkage.dev.seed_truth import TRUTH, truth_by_document

    tz = Settings().tz
    db = MongoClient(uri)[db_name]
    person = {"_id": 0, "id": 1, "phone": 1, "email": 1, "name": 1, "role": 1}
    data: dict[str, Any] = {
        "users": [{"unique_id": u["id"], "phone": _digest(normalize_phone(u.get("phone"))),
                   "email": _digest(normalize_email(u.get("email"))), "name": u.get("name")}
                  for u in db.users.find({"role": "customer"}, person) if isinstance(u.get("id"), str)],
        "customers": [{"unique_id": c["id"], "phone": _digest(normalize_phone(c.get("phone"))),
                       "email": _digest(normalize_email(c.get("email"))), "name": c.get("name")}
                      for c in db.customers_v2.find({}, person) if isinstance(c.get("id"), str)],
        "deliveries": [], "orders": [], "items": []}
    for name, side in (("delivery_statuses", "deliveries"), ("orders", "orders")):
        for d in db[name].find({}, {"_id": 0, "id": 1, "customer_id": 1, "delivery_date": 1, "status": 1}):
            day = normalize_date(d.get("delivery_date"), tz)
            if isinstance(d.get("id"), str):
                data[side].append({"unique_id": d["id"], "customer_id": d.get("customer_id")
                                   if isinstance(d.get("customer_id"), str) else None,
                                   "day": day.isoformat() if day else None, "status": d.get("status")})
    truth = truth_by_document(db) if TRUTH in db.list_collection_names() else {}
    for item in db.linkage_review.find({"status": "open", "category": {"$in": ["ambiguous", "conflict"]},
                                        "suggestion": {"$exists": True}}):
        known = truth.get((item["step"], item.get("document_id")))
        data["items"].append({"item_id": item["_id"], "step": item["step"], "category": item["category"],
                              "subject": item.get("document_id"), "candidates": [c["id"] for c in item["candidates"]],
                              "ours": {"target": item["suggestion"]["target"], "p": item["suggested_p"]},
                              "truth": known and {"truth": known["truth"], "evident": known["evident"]}})
    out.write_text(json.dumps(data))
    return {key: len(rows) for key, rows in data.items()}


def _splink_fit(left: list[dict[str, Any]], right: list[dict[str, Any]], comparisons: list[Any],
                blocks: list[list[str]]) -> tuple[dict[tuple[str, str], float], float]:
    """Splink 5 trained as its tutorials do; the pairwise match probability of every blocked pair, and seconds."""
    import pyarrow as pa
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    started = time.monotonic()
    api = DuckDBAPI()
    tables = [api.register(pa.Table.from_pylist(rows), table_name=name) for name, rows in (("l", left), ("r", right))]
    settings = SettingsCreator(link_type="link_only", comparisons=comparisons,
                               blocking_rules_to_generate_predictions=[block_on(*cols) for cols in blocks])
    linker = Linker(tables, settings, log_level="ERROR")
    linker.training.estimate_probability_two_random_records_match([block_on(*cols) for cols in blocks], recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    for cols in blocks:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols))
    found = linker.inference.predict(warning_mode="never").as_record_list()
    pairs = {(row["unique_id_l"], row["unique_id_r"]): float(row["match_probability"]) for row in found}
    return pairs, time.monotonic() - started


def _compared(items: list[dict[str, Any]], pairs: dict[tuple[str, str], float]) -> dict[str, Any]:
    """Per step, category and truth class, what each scorer settles at p >= 0.9 and how often rightly, and
    Splink's items with two candidates at p >= 0.5. Splink's decision for an item is its likeliest candidate
    when that pair is at p >= 0.5 (with that p), else `none` (with 1 - the likeliest pair's p)."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for item in items:
        cls = "no truth" if not item["truth"] else "evident" if item["truth"]["evident"] else "unsettleable"
        probs = {c: pairs.get((item["subject"], c), 0.0) for c in item["candidates"]}
        best = max(probs, key=lambda c: probs[c])
        target, p = (best, probs[best]) if probs[best] >= 0.5 else ("none", 1 - probs[best])
        row = table[f"{item['step']} {item['category']} {cls}"]
        row["items"] += 1
        truth = item["truth"]["truth"] if item["truth"] else None
        row["ours p>=0.9"] += item["ours"]["p"] >= 0.9
        row["ours p>=0.9 right"] += item["ours"]["p"] >= 0.9 and item["ours"]["target"] == truth
        row["splink p>=0.9"] += p >= 0.9
        row["splink p>=0.9 right"] += p >= 0.9 and target == truth
        row["splink agrees with ours"] += target == item["ours"]["target"]
        row["splink 2+ candidates p>=0.5"] += sum(q >= 0.5 for q in probs.values()) >= 2
    return {key: dict(counts) for key, counts in sorted(table.items())}


def fit(path: Path) -> dict[str, Any]:
    """Splink on the exported queue (a venv with Splink 5)."""
    import splink
    import splink.comparison_library as cl

    data = json.loads(path.read_text())
    user_pairs, user_seconds = _splink_fit(
        data["users"], data["customers"],
        [cl.ExactMatch("phone"), cl.ExactMatch("email"), cl.JaroWinklerAtThresholds("name", [0.88])],
        [["phone"], ["email"]])
    order_pairs, order_seconds = _splink_fit(
        data["deliveries"], data["orders"],
        [cl.ExactMatch("customer_id"), cl.ExactMatch("day"), cl.ExactMatch("status")], [["customer_id", "day"]])
    site = Path(sys.prefix) / SITE
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    return {"splink": splink.__version__, "install_mb": round(size / 2**20), "seconds": {
        "user_customer": round(user_seconds, 2), "order_delivery": round(order_seconds, 2)},
        "items": _compared(data["items"], {**user_pairs, **order_pairs})}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    out = sub.add_parser("export")
    out.add_argument("--uri", required=True)
    out.add_argument("--db", required=True)
    out.add_argument("--out", type=Path, required=True)
    sub.add_parser("fit").add_argument("path", type=Path)
    args = parser.parse_args()
    if args.command == "export":
        print(json.dumps(export(args.uri, args.db, args.out)))
        return
    try:
        import splink  # noqa: F401
    except ImportError:
        sys.exit("splink is not importable here: run `fit` with a venv holding splink==5.* (not requirements.txt)")
    print(json.dumps(fit(args.path), indent=1))


if __name__ == "__main__":
    main()
