"""What time it is, for everything that keeps or expires by age (retention, rollback windows, paging).

One function the engine handle carries (`Linkage.clock`), so a test can run a
season of nights in minutes by telling linkage which night it is, and the code
that ages things has one notion of now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
