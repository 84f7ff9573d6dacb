"""The conditional writes of a journaled batch, forwards (apply) and backwards (rollback).

Writes are conditional: a link is set only where the field is still unset, and
rollback restores only where the field still holds what the run wrote, so the
live app's writes in between are never overwritten. A bulk write whose every
operation matched costs nothing more; otherwise the documents are read back to
learn which writes landed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from pymongo import UpdateOne
from pymongo.database import Database

from linkage.mongo import bulk
from linkage.store.journal import BatchRecord, FieldWrite


class Reverted(NamedTuple):
    """What undoing writes did: restored now, already restored earlier, kept (the app changed them)."""

    restored: int = 0
    already: int = 0
    kept: int = 0

    def __add__(self, other: object) -> Reverted:
        assert isinstance(other, Reverted)
        return Reverted(*(a + b for a, b in zip(self, other, strict=True)))


def _run_bulk(db: Database, ops_by_coll: dict[str, list[UpdateOne]], chunk: int) -> int:
    """Unordered bulk writes per collection (`linkage.mongo.bulk`); per-op failures are left to the caller's
    read-back."""
    return sum(bulk.write(db[coll], ops, chunk) for coll, ops in ops_by_coll.items())


def _by_coll(writes: Iterable[FieldWrite]) -> dict[str, list[FieldWrite]]:
    grouped: dict[str, list[FieldWrite]] = {}
    for write in writes:
        grouped.setdefault(write.coll, []).append(write)
    return grouped


def _ops(writes: Iterable[FieldWrite], direction: str) -> dict[str, list[UpdateOne]]:
    return {coll: [getattr(w, direction)() for w in group] for coll, group in _by_coll(writes).items()}


def _current(db: Database, writes: list[FieldWrite]) -> dict[tuple[str, Any], dict[str, Any]]:
    """The written documents as they are now, by (collection, _id): their link fields only."""
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    for coll, group in _by_coll(writes).items():
        projection = dict.fromkeys({w.field for w in group}, 1)
        for doc in db[coll].find({"_id": {"$in": [w.oid for w in group]}}, projection):
            found[(coll, doc["_id"])] = doc
    return found


def apply_batch(db: Database, record: BatchRecord, chunk: int) -> list[FieldWrite]:
    """Carry out a pending batch; return the writes that could not land.

    The common case costs one bulk write per collection (in commands of `chunk`). Only when fewer writes
    matched than were sent (the app changed a field meanwhile, or a unique index
    refused a link) are the documents read back; a group that landed only in
    part is undone, so a run never leaves a one-sided link of its own making.
    The record keeps exactly the writes that landed.
    """
    if not record.writes:
        return []
    if _run_bulk(db, _ops(record.writes, "forward"), chunk) == len(record.writes):
        return []
    current = _current(db, record.writes)

    def landed(w: FieldWrite) -> bool:
        return current.get((w.coll, w.oid), {}).get(w.field) == w.new

    failed_groups = {w.group for w in record.writes if not landed(w)}
    _run_bulk(db, _ops([w for w in record.writes if w.group in failed_groups and landed(w)], "backward"), chunk)
    dropped = [w for w in record.writes if w.group in failed_groups]
    record.writes = [w for w in record.writes if w.group not in failed_groups]
    return dropped


def revert_batch(db: Database, record: BatchRecord, chunk: int) -> Reverted:
    """Undo a batch's writes where the field still holds the run's value.

    Writes that did not match are read back: a field already back at its
    before-image was restored by an earlier (interrupted) rollback; anything else
    is the app's value, kept.
    """
    if not record.writes:
        return Reverted()
    restored = _run_bulk(db, _ops(record.writes, "backward"), chunk)
    if restored == len(record.writes):
        return Reverted(restored=restored)
    current = _current(db, record.writes)
    at_before_image = sum(w.restored_in(current.get((w.coll, w.oid))) for w in record.writes)
    return Reverted(restored=restored, already=at_before_image - restored,
                    kept=len(record.writes) - at_before_image)
