"""How a batch's writes are stored in its journal document: compactly, by before-state.

A backfill write almost always finds its field missing (or null, or ""), so the
writes are grouped by (collection, field, before-state) and each group stores
only the values written. The written documents' ids are one list for the whole
batch, `touched`, as typed strings (which the journal indexes, for "did this
run write that?"): each group's ids are the next ones in it. A before-image
that is a real value (rare) is listed beside the group, and so is a write group
that is not the document's own (the two sides of a user-customer link). A
thousand writes take tens of kilobytes instead of hundreds, which the server
stores, and a rollback reads back, proportionally faster.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bson import ObjectId

from linkage.core.keys import id_key

MISSING, NULL, EMPTY, VALUE = "missing", "null", "empty", "value"


_DECODERS = {"ObjectId": ObjectId, "str": str, "int": int}


def _decodable(oid: Any) -> bool:
    return type(oid).__name__ in _DECODERS and _DECODERS[type(oid).__name__](str(oid)) == oid


def _id_from(key: str) -> Any:
    kind, _, text = key.partition(":")
    return _DECODERS[kind](text)


def _before(write: dict[str, Any]) -> str:
    if not write["had"]:
        return MISSING
    if write["old"] is None:
        return NULL
    return EMPTY if write["old"] == "" else VALUE


def pack(writes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """FieldWrite dicts -> (compact groups, touched keys); see the module docstring."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for w in writes:
        grouped.setdefault((w["coll"], w["field"], _before(w)), []).append(w)
    entries, keys = [], []
    for (coll, field, before), members in grouped.items():
        entry: dict[str, Any] = {"c": coll, "f": field, "b": before, "n": [w["new"] for w in members]}
        for index, w in enumerate(members):
            keys.append(id_key(w["oid"]))
            if before == VALUE:
                entry.setdefault("v", []).append(w["old"])
            if w["group"] != str(w["oid"]):
                entry.setdefault("g", {})[str(index)] = w["group"]
            if not _decodable(w["oid"]):
                entry.setdefault("o", {})[str(index)] = w["oid"]
        entries.append(entry)
    return entries, keys


def written_per_field(entries: list[dict[str, Any]]) -> Counter[str]:
    """How many values compact groups write, per `collection.field`, without unpacking them; a clear (`None`)
    counts -1: the field held a link and no longer does."""
    written: Counter[str] = Counter()
    for entry in entries:
        written[f"{entry['c']}.{entry['f']}"] += sum(1 if new is not None else -1 for new in entry["n"])
    return written


def unpack(entries: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """(Compact groups, touched keys) -> FieldWrite dicts."""
    writes, offset = [], 0
    for entry in entries:
        before, groups, raw = entry["b"], entry.get("g", {}), entry.get("o", {})
        for index, new in enumerate(entry["n"]):
            oid = raw[str(index)] if str(index) in raw else _id_from(keys[offset + index])
            old = entry["v"][index] if before == VALUE else {MISSING: None, NULL: None, EMPTY: ""}[before]
            writes.append({"coll": entry["c"], "oid": oid, "field": entry["f"], "new": new, "old": old,
                           "had": before != MISSING, "group": groups.get(str(index), str(oid))})
        offset += len(entry["n"])
    return writes
