"""What a run tells the people on call, raised where it happens and heard by whoever subscribed.

The stages raise events (validation failed, drift found, rolled back, rollback
failed) in one place for every caller; the callers only subscribe their
channels, like alembic's `on_version_apply` callbacks or notifiers attached to
Airflow callbacks: the CLI the log and `linkage_alerts`, an Airflow task its
notifier (email, webhook, and the same two).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from linkage.run.record import RunRecord


class Event(StrEnum):
    VALIDATION_FAILED = "validation_failed"
    TASK_FAILED = "task_failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    DRIFT_FOUND = "drift_found"
    DRIFT_REMINDER = "drift_reminder"


Subscriber = Callable[[Event, "RunRecord"], None]


class Events:
    """The subscribers of one engine handle, told of each event in the order it is raised."""

    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self.subscribers = list(subscribers)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def emit(self, event: Event, run: RunRecord) -> None:
        for subscriber in self.subscribers:
            subscriber(event, run)
