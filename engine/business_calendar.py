"""Business time: Danish public holidays, working days and forum meeting dates."""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, timedelta

import holidays


class BusinessCalendar:
    def __init__(self, meetings: dict[str, list[date]] | None = None) -> None:
        self._holidays = holidays.country_holidays("DK")
        self._meetings: dict[str, list[date]] = {}
        self.version = 0  # bumped on every change, so evaluator processes know when to refresh
        for forum, dates in (meetings or {}).items():
            self.set_meetings(forum, dates)

    def set_meetings(self, forum: str, dates: list[date]) -> None:
        self._meetings[forum] = sorted(set(dates))
        self.version += 1

    def meetings(self) -> dict[str, list[str]]:
        """Every forum's meeting dates as ISO strings."""
        return {forum: [d.isoformat() for d in dates] for forum, dates in self._meetings.items()}

    def is_holiday(self, day: date) -> bool:
        return day in self._holidays

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and not self.is_holiday(day)

    def add_working_days(self, start: date, days: int) -> date:
        """The date `days` working days after `start` (before it when negative)."""
        step = 1 if days >= 0 else -1
        remaining = abs(days)
        current = start
        while remaining:
            current += timedelta(days=step)
            if self.is_working_day(current):
                remaining -= 1
        return current

    def next_meeting(self, forum: str, after: date) -> str | None:
        """ISO date of the forum's first planned meeting strictly after `after`, or None."""
        dates = self._meetings.get(forum, [])
        i = bisect_right(dates, after)
        return dates[i].isoformat() if i < len(dates) else None
