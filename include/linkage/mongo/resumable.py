"""Ordered reads that outlive their cursor: a pass goes on after the last batch it handed out.

MongoDB kills a cursor left idle for ten minutes, and `killCursors` or a primary step-down can
end one at any time: the next `getMore` raises `CursorNotFound` (or a not-primary or network
error). `resumable` reopens the read after the last key of the last *complete* batch handed out
(a batch closes where the walk key changes, or with a tiebreak at the pair it ends on: either way
every document up to that position was in it), drops the batch it was filling, and goes on: no
batch is skipped or handed out twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from pymongo.errors import AutoReconnect, CursorNotFound, OperationFailure, PyMongoError

from linkage.mongo.transient import TRANSIENT_CODES

log = logging.getLogger("linkage.mongo.resumable")
T = TypeVar("T")

#: server errors after which the same read, reopened, is correct: the cursor or the primary went away
RESUMABLE_CODES = frozenset({
    43,  # CursorNotFound
    175,  # QueryPlanKilled
    237,  # CursorKilled
}) | TRANSIENT_CODES  # and whatever a failover or a chunk migration raises (`linkage.mongo.transient`)
#: reopenings in a row without a batch handed out in between, before the error is raised
RETRIES = 5


def is_resumable(error: PyMongoError) -> bool:
    if isinstance(error, CursorNotFound | AutoReconnect):
        return True
    return isinstance(error, OperationFailure) and error.code in RESUMABLE_CODES


def resumable(open_after: Callable[[Any], Iterable[Any]], cut: Callable[[Iterable[Any]], Iterator[list[T]]],
              last_key: Callable[[list[T]], Any], after: Any = None) -> Iterator[list[T]]:
    """The batches `cut` makes of `open_after(after)`; reopened with `open_after(<last key handed out>)`
    when the read dies of a resumable error."""
    failures = 0
    while True:
        try:
            for batch in cut(open_after(after)):
                after, failures = last_key(batch), 0
                yield batch
            return
        except PyMongoError as error:
            if not is_resumable(error) or failures >= RETRIES:
                raise
            failures += 1
            log.warning("read ended by the server (%s); resuming after the last batch handed out",
                        type(error).__name__)
