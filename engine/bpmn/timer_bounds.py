"""ISO 8601 timer values, parsed within bounds: a cycle may not repeat more often than
Limits.min_timer_cycle_seconds and no date or duration may reach beyond Limits.max_timer_horizon_years.

SpiffWorkflow adds a duration's months one by one (P999999999Y loops for hours) and lets a zero
interval repeat forever; every timer value therefore goes through here first, at deploy time when it
is a literal and at run time when it is computed.
"""

from __future__ import annotations

import ast
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from ..limits import DEFAULT_LIMITS, Limits

_DAYS = {"years": 365.2425, "months": 30.436875, "weeks": 7.0, "days": 1.0, "hours": 1 / 24,
         "minutes": 1 / 1440, "seconds": 1 / 86400}


class TimerBoundError(ValueError):
    """A timer value that is invalid or outside the bounds."""


def literal(expression: str | None) -> str | None:
    """The value of a timer expression that is a plain string literal (how deploy stores ISO literals)."""
    if not expression:
        return None
    try:
        value = ast.literal_eval(expression.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _horizon(limits: Limits) -> timedelta:
    return timedelta(days=limits.max_timer_horizon_years * 365.2425)


def _parts(text: str) -> dict[str, Any]:
    if len(text) > 100:
        raise TimerBoundError(f"'{text[:40]}...' is not an ISO 8601 duration")
    try:
        parts = TimerEventDefinition.parse_iso_duration(text)
    except Exception:
        raise TimerBoundError(f"'{text}' is not an ISO 8601 duration (e.g. PT30M, P2D)") from None
    if not parts:
        raise TimerBoundError(f"'{text}' is not an ISO 8601 duration (e.g. PT30M, P2D)")
    return parts


def duration(text: str, start: datetime, limits: Limits = DEFAULT_LIMITS, *, backwards: bool = False) -> timedelta:
    """The length of ISO duration `text` counted from (or, backwards, up to) `start`."""
    parts = _parts(text.strip())
    days = sum(float(v) * _DAYS[k] for k, v in parts.items() if k in _DAYS)
    if days > _horizon(limits).days:
        raise TimerBoundError(f"the duration '{text}' reaches beyond the timer horizon of "
                              f"{limits.max_timer_horizon_years} years")
    try:
        if backwards:
            return TimerEventDefinition.get_timedelta_from_end(parts, start)
        return TimerEventDefinition.get_timedelta_from_start(parts, start)
    except (OverflowError, ValueError) as exc:
        raise TimerBoundError(f"the duration '{text}' cannot be used: {exc}") from None


def date(text: str, now: datetime, limits: Limits = DEFAULT_LIMITS) -> datetime:
    value = text.strip()
    if value.upper().startswith(("P", "R")):
        raise TimerBoundError(f"'{value}' is not a date and time (e.g. 2027-03-01T09:00:00Z)")
    try:
        parsed = TimerEventDefinition.parse_time_or_duration(value)
    except Exception:
        raise TimerBoundError(f"'{value}' is not an ISO 8601 date and time (e.g. 2027-03-01T09:00:00Z)") from None
    if not isinstance(parsed, datetime):
        raise TimerBoundError(f"'{value}' is not a date and time")
    try:
        beyond = parsed - now > _horizon(limits)
    except OverflowError:
        beyond = True
    if beyond:
        raise TimerBoundError(f"the date '{value}' is beyond the timer horizon of "
                              f"{limits.max_timer_horizon_years} years")
    return parsed


def cycle(text: str, now: datetime, limits: Limits = DEFAULT_LIMITS) -> tuple[int, datetime, timedelta]:
    """(repetitions or -1 for unbounded, first firing, interval) of R[n]/[start/]duration or R[n]/duration/end."""
    value = text.strip().upper()
    if not value.startswith("R") or "/" not in value:
        raise TimerBoundError(f"'{text.strip()}' is not an ISO 8601 repeating interval (e.g. R3/PT1H, R/P1D)")
    count, *rest = value[1:].replace("--", "/").split("/")
    if count and not (count.isdigit() and len(count) <= 9):
        raise TimerBoundError(f"'{text.strip()}' has an invalid number of repetitions")
    cycles = int(count) if count else -1
    if cycles == 0:
        raise TimerBoundError(f"'{text.strip()}' repeats zero times and never fires")
    if len(rest) == 1 and rest[0].startswith("P"):
        interval = duration(rest[0], now, limits)
        start = now + interval
    elif len(rest) == 2 and rest[1].startswith("P") and not rest[0].startswith("P"):
        start = date(rest[0], now, limits)
        interval = duration(rest[1], start, limits)
    elif len(rest) == 2 and rest[0].startswith("P") and not rest[1].startswith("P"):
        end = date(rest[1], now, limits)
        interval = duration(rest[0], end, limits, backwards=True)
        start = end - interval
    else:
        raise TimerBoundError(f"'{text.strip()}' is not an ISO 8601 repeating interval (e.g. R3/PT1H, R/P1D)")
    check_interval(interval, text.strip(), limits)
    return cycles, start, interval


def check_interval(interval: timedelta, text: str, limits: Limits = DEFAULT_LIMITS) -> None:
    if interval.total_seconds() < limits.min_timer_cycle_seconds:
        raise TimerBoundError(f"the cycle '{text}' repeats every {interval.total_seconds():g} s; the shortest "
                              f"interval allowed is {limits.min_timer_cycle_seconds} s")


def first_due(kind: str, value: str, now: datetime, limits: Limits = DEFAULT_LIMITS) -> datetime:
    """When a timer of this kind (timeDate, timeDuration, timeCycle) and evaluated value fires first."""
    if kind == "timeDate":
        return date(value, now, limits)
    if kind == "timeDuration":
        return now + duration(value, now, limits)
    if kind == "timeCycle":
        return cycle(value, now, limits)[1]
    raise TimerBoundError(f"unknown timer kind {kind}")


def any_due(value: str, now: datetime, limits: Limits = DEFAULT_LIMITS) -> datetime:
    """First firing of a value whose kind is not known (a cycle, a duration or a date)."""
    text = value.strip()
    if text.upper().startswith("R"):
        return cycle(text, now, limits)[1]
    if text.upper().startswith("P"):
        return now + duration(text, now, limits)
    return date(text, now, limits)
