"""A cron schedule that says, wherever Airflow shows it, which timezone it fires in.

Airflow's own `CronTriggerTimetable` fires in its timezone but describes itself
without it ("At 02:30"), which the UI then shows beside the viewer's timezone,
so a 02:30 Asia/Kolkata job reads as 02:30 UTC. Registered by the plugin, so
every Airflow component can load it.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.timetables.trigger import CronTriggerTimetable


class LocalCronTimetable(CronTriggerTimetable):
    """`CronTriggerTimetable` whose summary and description name its timezone."""

    def __init__(self, cron: str, *, timezone: str, **kwargs: Any) -> None:
        super().__init__(cron, timezone=timezone, **kwargs)
        name = str(getattr(self._timezone, "name", self._timezone))
        next_fire = self._get_next(pendulum.now("UTC"))
        self.description = f"{self.description}, {name} time ({next_fire.strftime('%H:%M')} UTC)"
        self._summary = f"{self._expression} ({name})"

    @property
    def summary(self) -> str:
        return self._summary
