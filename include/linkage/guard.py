"""The lock guard on the write path, as mongock's `LockGuardProxy` guards every driver call.

A run writes the app's collections and its journal only through these proxies:
before every write the guard runs (the lease is still this run's, the
partition still this try's), so a run that lost its lease stops at its next
write, wherever that write is, and no code can forget to ask. Reads pass
through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from pymongo.collection import Collection
from pymongo.database import Database

Guard = Callable[[], None]

#: The collection methods that change data or indexes.
WRITES = frozenset({"bulk_write", "insert_one", "insert_many", "update_one", "update_many", "replace_one",
                    "delete_one", "delete_many", "find_one_and_update", "find_one_and_replace", "find_one_and_delete",
                    "create_index", "create_indexes", "drop_index", "drop"})


class _GuardedCollection:
    def __init__(self, coll: Collection, guard: Guard) -> None:
        self._coll, self._guard = coll, guard

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._coll, name)
        if name not in WRITES:
            return attr

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._guard()
            return attr(*args, **kwargs)

        return guarded


class _GuardedDatabase:
    def __init__(self, db: Database, guard: Guard) -> None:
        self._db, self._guard = db, guard

    def __getitem__(self, name: str) -> Collection:
        return guarded_collection(self._db[name], self._guard)

    def get_collection(self, name: str, **options: Any) -> Collection:
        return guarded_collection(self._db.get_collection(name, **options), self._guard)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._db, name)  # `db.users` is a collection too
        return guarded_collection(attr, self._guard) if isinstance(attr, Collection) else attr


def guarded_collection(coll: Collection, guard: Guard) -> Collection:
    """`coll`, with `guard()` run before every write (it quacks as a Collection)."""
    return cast(Collection, _GuardedCollection(coll, guard))


def guarded_database(db: Database, guard: Guard) -> Database:
    """`db`, whose collections run `guard()` before every write."""
    return cast(Database, _GuardedDatabase(db, guard))
