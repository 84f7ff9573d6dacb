"""Riding out failovers: the errors an election or a shard migration raises, retried with backoff.

An election takes 10-12 s on a healthy replica set and up to 30 s on a slow one; a chunk migration makes a
shard answer "stale config" for a moment. Every write linkage makes is idempotent (a link lands only where the
field still holds what was read, a journal document is keyed by its batch, a review item by its document), so
a write that failed for one of these reasons is sent again, after a growing pause, until a budget runs out
(`LINKAGE_RETRY_SECONDS`, 60 s by default): the run rides the election out instead of failing, and an outage
longer than the budget still fails it, with the server's error. Reads whose cursor died the same way are
reopened where they stopped (`linkage.mongo.resumable`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pymongo.collection import Collection
from pymongo.errors import AutoReconnect, OperationFailure, PyMongoError, ServerSelectionTimeoutError

log = logging.getLogger("linkage.mongo.transient")
T = TypeVar("T")

#: Server errors after which the same request, sent again, is correct: the primary or the shard moved.
TRANSIENT_CODES = frozenset({
    6,  # HostUnreachable
    7,  # HostNotFound
    89,  # NetworkTimeout
    91,  # ShutdownInProgress
    189,  # PrimarySteppedDown
    262,  # ExceededTimeLimit
    9001,  # SocketException
    10107,  # NotWritablePrimary
    11600,  # InterruptedAtShutdown
    11602,  # InterruptedDueToReplStateChange
    13435,  # NotPrimaryNoSecondaryOk
    13436,  # NotPrimaryOrSecondary
    63,  # StaleShardVersion
    150,  # StaleEpoch
    13388,  # StaleConfig
    133,  # FailedToSatisfyReadPreference
    134,  # ReadConcernMajorityNotAvailableYet
})
#: The most a request is retried for, in seconds, and its pauses: from the first to the longest.
BUDGET, FIRST_PAUSE, LONGEST_PAUSE = 60.0, 0.25, 4.0
#: The collection methods that send one request (a cursor's `find` is reopened by `linkage.mongo.resumable`).
SINGLE = frozenset({"bulk_write", "insert_one", "insert_many", "update_one", "update_many", "replace_one",
                    "delete_one", "delete_many", "find_one", "find_one_and_update", "find_one_and_replace",
                    "find_one_and_delete", "count_documents", "estimated_document_count", "distinct"})


def is_transient(error: BaseException) -> bool:
    """An error a failover or a chunk migration raises (a refused write or a lost connection): worth a retry."""
    if isinstance(error, ServerSelectionTimeoutError):
        return False  # it already waited out an election for a primary (`linkage.mongo.connect`): the server is gone
    if isinstance(error, AutoReconnect):
        return True
    if isinstance(error, OperationFailure):
        return error.code in TRANSIENT_CODES or error.has_error_label("RetryableWriteError")
    return False


def retried(call: Callable[[], T], what: str, budget: float = BUDGET) -> T:
    """`call()`, again after a pause while it fails of a transient error, until `budget` seconds have passed."""
    started, pause = time.monotonic(), FIRST_PAUSE
    while True:
        try:
            return call()
        except PyMongoError as error:
            if not is_transient(error) or time.monotonic() - started + pause > budget:
                raise
            log.warning("%s: %s; retrying in %.2g s (a failover?)", what, type(error).__name__, pause)
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)


class _Retrying:
    def __init__(self, coll: Collection, budget: float) -> None:
        self._coll, self._budget = coll, budget

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._coll, name)
        if name not in SINGLE:
            return attr

        def again(*args: Any, **kwargs: Any) -> Any:
            return retried(lambda: attr(*args, **kwargs), f"{self._coll.name}.{name}", self._budget)

        return again


def unretried(coll: Collection) -> Collection:
    """The collection under `retrying`'s (itself otherwise): for a wrapper that retries on its own terms, so that
    no request is retried by two layers at once."""
    return coll._coll if isinstance(coll, _Retrying) else coll


def retrying(coll: Collection, budget: float = BUDGET) -> Collection:
    """`coll`, each of its one-request methods retried through a failover (it quacks as a Collection)."""
    return cast(Collection, _Retrying(coll, budget))
