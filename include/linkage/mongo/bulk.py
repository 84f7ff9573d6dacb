"""Unordered bulk writes in commands of a bounded number of statements, the same on every server.

Why bounded (`LINKAGE_WRITE_CHUNK`, docs/CONTRACT.md §8): FerretDB 1.24 keeps a backend
connection open for every statement of an `update` command that matched a document until
the command ends, so a command of 100 such statements (SQLite; 50 on PostgreSQL) hangs for
ever, and leaves that database wedged; no probe can look for the limit safely. MongoDB
takes 100,000 statements a command, so a smaller command costs it only round trips.

Why the per-op fallback: MongoDB reports a statement refused by a unique index as a write
error naming that statement, and applies the others. FerretDB 1.24 fails the whole
command (InternalError) and skips every statement after the refused one, without saying
which it was. So a command that fails as a command is sent again one statement at a time;
a lone statement the server still refuses is that statement's refusal, as a write error
would be, and the caller's read-back (`linkage.engine.conditional`) learns what landed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, OperationFailure

from linkage.mongo.concerns import refuse_unconfirmed


def _matched(coll: Collection, ops: Sequence[Any]) -> int:
    """One command; a write error names its statement and the others were applied, so they are counted."""
    try:
        return coll.bulk_write(list(ops), ordered=False).matched_count
    except BulkWriteError as exc:
        refuse_unconfirmed(exc)  # a write-concern error is not a statement's refusal: it stops the run
        return int(exc.details.get("nMatched", 0))


def _alone(coll: Collection, op: Any) -> int:
    """One statement in a command of its own; refused as a command, it matched nothing."""
    try:
        return _matched(coll, [op])
    except OperationFailure:
        return 0


def write(coll: Collection, ops: Sequence[Any], chunk: int) -> int:
    """Send `ops` unordered, at most `chunk` statements a command; how many matched a document."""
    matched = 0
    for start in range(0, len(ops), chunk):
        part = ops[start:start + chunk]
        try:
            matched += _matched(coll, part)
        except OperationFailure:  # the whole command failed, no statement named: each again, alone
            matched += sum(_alone(coll, op) for op in part) if len(part) > 1 else 0
    return matched
