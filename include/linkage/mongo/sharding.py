"""What a sharded cluster asks of linkage's indexes, checked before anything is written.

A unique index on a sharded collection must start with the collection's shard key: mongos refuses any other
(the uniqueness could not be enforced across shards). linkage's unique link indexes (`users.customer_v2_id`,
`customers_v2.user_id`) are therefore impossible on a collection sharded on anything else, and a run that
discovered it at `create_indexes`, after its preflight, or worse, created a plain index and left uniqueness to
validation, would not be what a person asked for. `refuse_unshardable` reads the shard keys from the cluster's
catalog (`config.collections`, which mongos serves; it is empty on a replica set or a standalone) and refuses,
naming each index and its collection's shard key. Everything else linkage does works on a sharded cluster as
it is: every write filters on `_id` (which mongos routes, or broadcasts, for a single-document update), reads
are by index ranges, partitions are cut by `$bucketAuto` (no `skip`), and the shard errors of a chunk
migration are retried (`linkage.mongo.transient`). docs/production.md says what is guaranteed where.
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database
from pymongo.errors import OperationFailure

from linkage.core.errors import UnshardableError
from linkage.mongo.indexes import IndexSpec


def shard_keys(db: Database, collections: set[str]) -> dict[str, dict[str, Any]]:
    """The shard key of each of these collections that is sharded (none on a replica set or a standalone)."""
    try:
        found = db.client["config"]["collections"].find(
            {"_id": {"$in": [f"{db.name}.{name}" for name in sorted(collections)]}, "dropped": {"$ne": True}},
            {"key": 1})
        return {str(doc["_id"]).split(".", 1)[1]: dict(doc["key"]) for doc in found if doc.get("key")}
    except OperationFailure:  # a user who may not read the catalog: mongos refuses the index itself, later
        return {}


def _prefixed(index: list[tuple[str, int]], key: dict[str, Any]) -> bool:
    fields = [name for name, _ in index]
    return fields[:len(key)] == list(key)


def refuse_unshardable(db: Database, specs: list[IndexSpec]) -> None:
    """Refuse, before any write, unique indexes that the collections' shard keys make impossible."""
    unique = [spec for spec in specs if spec.unique_link]
    keys = shard_keys(db, {spec.collection for spec in unique})
    impossible = [f"{spec.collection} {spec.name} (sharded on {keys[spec.collection]})" for spec in unique
                  if spec.collection in keys and not _prefixed(spec.keys, keys[spec.collection])]
    if impossible:
        raise UnshardableError(f"a unique link index cannot be created on a collection sharded on another key: "
                           f"{'; '.join(impossible)}. Nothing was written. Keep these collections unsharded, "
                           "or shard them on the link field (docs/production.md).")
