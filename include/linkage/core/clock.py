"""What time it is, for everything that keeps or expires by age (retention, rollback windows, paging).

One function the engine handle carries (`Linkage.clock`), so a test can run a
season of nights in minutes by telling linkage which night it is, and the code
that ages things has one notion of now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: Any) -> datetime | None:
    """A stored timestamp: a date on MongoDB, an ISO string where the server stores `$set` dates as text."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
