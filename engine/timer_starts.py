"""When a process with a timer start event starts: its first start (computed at deploy, where a bad
value is a refusal) and each next one (the scheduler). Shared by the definition and scheduler services,
so neither needs the other."""

from __future__ import annotations

from datetime import datetime, timedelta

from .bpmn import timer_bounds
from .clock import Clock
from .limits import Limits
from .scripting import RestrictedScriptEngine
from .timers import next_due as timer_next_due
from .timers import parse_cycle


class TimerStartSchedule:
    def __init__(self, script_engine: RestrictedScriptEngine, clock: Clock, limits: Limits) -> None:
        self._script_engine = script_engine
        self._clock = clock
        self._limits = limits

    def first_start(self, expression: str) -> datetime | None:
        """When a timer start event first fires, from now. Raises ValueError (with the reason) for a value
        that is invalid or outside the timer bounds; deploy turns that into a refusal."""
        return self.next_start(self.value(expression), None)

    def value(self, expression: str) -> str:
        value = timer_bounds.literal(expression)  # the usual case: an ISO literal, nothing to evaluate
        if value is None:
            value = str(self._script_engine.environment.evaluate(expression, {}))
        timer_bounds.any_due(value, self._clock.now(), self._limits)  # bounds, or ValueError
        return value

    def next_start(self, value: str, after: datetime | None, anchor: datetime | None = None) -> datetime | None:
        """The first start after `after` (and after now: missed starts are skipped, not caught up).
        A cycle counts from `anchor` (the deployment), so R3/PT1H starts three times in all."""
        now = self._clock.now()
        if value.upper().startswith("R"):
            cycles, start, duration = parse_cycle(value, anchor or now, self._limits)
            if after is None:
                return start
            if duration <= timedelta(0):
                return None
            floor = max(after, now)
            index = 0 if start > floor else (floor - start) // duration + 1
            if cycles != -1 and index >= cycles:
                return None
            return start + index * duration
        if after is not None:
            return None  # a date or duration start fires once
        return timer_next_due(value, now, self._limits)
