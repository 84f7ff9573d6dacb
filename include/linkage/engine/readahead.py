"""Overlapping reads with writes, in bounded memory: a producer thread runs ahead of the consumer.

A backfill pass reads and plans batch n+1 while batch n is journaled and
written; a rollback reads the next journal batch while the previous one is
reverted. The consumer still handles items strictly in order, so checkpoints,
the journal-before-write rule and conditional writes are exactly as without
read-ahead. At most `limit` items are in flight (taken by the producer and not
yet released by the consumer), whatever the sizes involved.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
_POLL = 0.05


class Stopped(Exception):
    """The consumer stopped: the producer gives up waiting for a slot."""


class InFlight:
    """At most `limit` items taken and not yet released; remembers the most there ever were."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("at least one item must be allowed in flight")
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.count = self.high_water = 0

    def take(self) -> None:
        """Wait for a free slot (the producer calls this before it reads the next item)."""
        while not self._slots.acquire(timeout=_POLL):
            if self._stop.is_set():
                raise Stopped
        with self._lock:
            self.count += 1
            self.high_water = max(self.high_water, self.count)

    def release(self) -> None:
        """An item is done with (the consumer calls this after handling it)."""
        with self._lock:
            self.count -= 1
        self._slots.release()

    def stop(self) -> None:
        self._stop.set()


def bounded(items: Iterable[T], flight: InFlight) -> Iterator[T]:
    """`items`, each read only once a slot is free: what bounds the reads, not only what is queued."""
    iterator = iter(items)
    while True:
        flight.take()
        try:
            item = next(iterator)
        except StopIteration:
            flight.release()
            return
        yield item


class _Failure(Generic[T]):
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


@contextmanager
def read_ahead(items: Iterable[T], flight: InFlight) -> Iterator[Iterator[T]]:
    """Iterate `items` in a thread of its own, ahead of the consumer, at most `flight.limit` ahead.

    `items` takes a slot before it reads each item (build it on `bounded`); the
    consumer releases it once it is done with that item. An error in the producer
    is raised in the consumer; when the consumer stops (an error, a lost lease),
    the producer is stopped too.
    """
    handoff: queue.Queue[object] = queue.Queue()

    def produce() -> None:
        try:
            for item in items:
                handoff.put(item)
            handoff.put(_DONE)
        except Stopped:
            handoff.put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            handoff.put(_Failure(error))

    def consume() -> Iterator[T]:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]

    producer = threading.Thread(target=produce, name="linkage-read-ahead", daemon=True)
    producer.start()
    try:
        yield consume()
    finally:
        flight.stop()
        producer.join(timeout=30)
