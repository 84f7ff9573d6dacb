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

from linkage.mongo.transient import BUDGET, retried, unretried

Guard = Callable[[], None]

#: The collection methods that change data or indexes.
WRITES = frozenset({"bulk_write", "insert_one", "insert_many", "update_one", "update_many", "replace_one",
                    "delete_one", "delete_many", "find_one_and_update", "find_one_and_replace", "find_one_and_delete",
                    "create_index", "create_indexes", "drop_index", "drop"})


class _GuardedCollection:
    def __init__(self, coll: Collection, guard: Guard, budget: float) -> None:
        self._coll, self._guard, self._budget = coll, guard, budget

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._coll, name)
        if name not in WRITES:
            return attr

        def guarded(*args: Any, **kwargs: Any) -> Any:
            def once() -> Any:
                self._guard()  # asked again before every try: a failover must not outlast the lease
                return attr(*args, **kwargs)

            return retried(once, f"{self._coll.name}.{name}", self._budget)  # through a failover (idempotent)

        return guarded


class _GuardedDatabase:
    def __init__(self, db: Database, guard: Guard, budget: float) -> None:
        self._db, self._guard, self._budget = db, guard, budget

    def __getitem__(self, name: str) -> Collection:
        return guarded_collection(self._db[name], self._guard, self._budget)

    def get_collection(self, name: str, **options: Any) -> Collection:
        return guarded_collection(self._db.get_collection(name, **options), self._guard, self._budget)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._db, name)  # `db.users` is a collection too
        return guarded_collection(attr, self._guard, self._budget) if isinstance(attr, Collection) else attr


def guarded_collection(coll: Collection, guard: Guard, budget: float = BUDGET) -> Collection:
    """`coll`, with `guard()` run before every write, and a write that a failover refused sent again
    (`linkage.mongo.transient`) within `budget` seconds (it quacks as a Collection)."""
    return cast(Collection, _GuardedCollection(unretried(coll), guard, budget))  # one retry layer, guard each try


def guarded_database(db: Database, guard: Guard, budget: float = BUDGET) -> Database:
    """`db`, whose collections run `guard()` before every write (and retry it through a failover)."""
    return cast(Database, _GuardedDatabase(db, guard, budget))
