"""The truth `linkage seed` plants: per ambiguous and conflict item it planted, the right decision.

`linkage_seed_truth` holds a row per planted document, `{_id: its app id, step, collection, truth: the id it
belongs linked to, or "none", evident}`: `evident` says whether the evidence settles it (one candidate order
delivered, one profile agreeing by phone and email, one of two accounts agreeing by email and name) or
cannot (two delivered orders, two identical profiles, two identical accounts). What suggestions are judged
against (`linkage.review.quality`), in the style of Splink's labels table; `linkage seed --truth` prints it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

#: The collection, beside the app's, holding the seeded truth (whatever LINKAGE_PREFIX says: seed has no settings).
TRUTH = "linkage_seed_truth"
COLUMNS = ["_id", "step", "collection", "truth", "evident"]


def write_truth(coll: Collection, rows: list[dict[str, Any]], chunk: int) -> int:
    """Replace the stored truth with these rows; how many."""
    coll.drop()
    for start in range(0, len(rows), chunk):
        coll.insert_many(rows[start:start + chunk], ordered=False)
    return len(rows)


def truth_rows(db: Database) -> Iterator[dict[str, Any]]:
    """The stored truth, in step then id order."""
    return iter(db[TRUTH].find({}, sort=[("step", 1), ("_id", 1)]))


def truth_by_document(db: Database) -> dict[tuple[str, str], dict[str, Any]]:
    """The truth per (step, document id): small (a row per planted ambiguous or conflict document)."""
    return {(row["step"], row["_id"]): row for row in truth_rows(db)}


def truth_csv(db: Database) -> Iterator[str]:
    """The truth as CSV, a line at a time (ids and booleans only: nothing a spreadsheet would run)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["document_id", *COLUMNS[1:]])
    for row in truth_rows(db):
        writer.writerow([row["_id"], row["step"], row["collection"], row["truth"], str(row["evident"]).lower()])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
