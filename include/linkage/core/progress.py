"""Progress of long steps on stderr: done/total, rate and ETA."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints at most every `interval` seconds, and once at the end."""

    def __init__(self, label: str, total: int, *, enabled: bool = True, interval: float = 2.0) -> None:
        self.label, self.total, self.enabled, self.interval = label, total, enabled, interval
        self.done = 0
        self.started = self.last_print = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        if self.enabled and time.monotonic() - self.last_print >= self.interval:
            self._print()

    def finish(self) -> None:
        if self.enabled and self.done:
            self._print()

    def _print(self) -> None:
        self.last_print = time.monotonic()
        elapsed = max(self.last_print - self.started, 1e-6)
        rate = self.done / elapsed
        total = max(self.total, self.done)  # the count is an estimate (the app inserts; nx miscounts `$expr`)
        eta = f"{(total - self.done) / rate:.0f}s" if rate > 0 else "?"
        print(f"{self.label}: {self.done}/{total} docs, {rate:,.0f} docs/s, ETA {eta}",
              file=sys.stderr, flush=True)
