"""Dates for people: relative due dates ("om 3 dage", "2 dage over frist") and local date-times.

Days are counted as calendar days in Copenhagen time, so a task due tomorrow morning is
"i morgen" whatever the hour now."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import ngettext

LOCAL_TZ = ZoneInfo("Europe/Copenhagen")


def parse(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def is_overdue(due: str | datetime | None, now: datetime) -> bool:
    due_dt = parse(due)
    return due_dt is not None and due_dt < now


def days_until(due: datetime, now: datetime, tz: ZoneInfo = LOCAL_TZ) -> int:
    return (due.astimezone(tz).date() - now.astimezone(tz).date()).days


def relative_due(due: str | datetime | None, now: datetime, tz: ZoneInfo = LOCAL_TZ) -> str:
    """'om 3 dage', 'i morgen', 'i dag', 'over frist i dag', '2 dage over frist' ('' without a due date)."""
    due_dt = parse(due)
    if due_dt is None:
        return ""
    days = days_until(due_dt, now, tz)
    if due_dt < now:
        if days >= 0:
            return _("over frist i dag")
        return ngettext("%(num)d dag over frist", "%(num)d dage over frist", -days)
    if days <= 0:
        return _("i dag")
    if days == 1:
        return _("i morgen")
    return ngettext("om %(num)d dag", "om %(num)d dage", days)
