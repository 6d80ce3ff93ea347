"""Timer event definitions that read the engine's clock instead of the wall clock.

SpiffWorkflow's timers call datetime.now() directly; these subclasses ask the workflow's
script engine for the time, so a FrozenClock moves every timer of an engine at once.

Every value goes through bpmn/timer_bounds.py (minimum cycle interval, maximum horizon). A timer
whose expression fails or is out of bounds does not raise in the middle of SpiffWorkflow's task
updates (that would leave the task tree half updated): it records the failure on its task and keeps
waiting without firing; `pending_failure` turns that into an incident naming the element, and
`clear_failures` lets a retry evaluate it again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from .bpmn import timer_bounds
from .limits import DEFAULT_LIMITS, Limits

FAILURE = "timer_failure"


def _now(my_task: Any) -> datetime:
    clock = getattr(my_task.workflow.script_engine, "clock", None)
    return clock.now() if clock is not None else datetime.now(UTC)


def _limits(my_task: Any) -> Limits:
    return getattr(my_task.workflow.script_engine, "limits", None) or DEFAULT_LIMITS


def _describe(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text or exc.__class__.__name__


class _GuardedTimerMixin:
    kind = "timer"
    expression: str

    def _value(self, my_task: Any) -> str:
        value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    def _failed(self, my_task: Any) -> bool:
        return FAILURE in my_task.internal_data

    def _fail(self, my_task: Any, exc: Exception) -> None:
        my_task.internal_data[FAILURE] = f"the timer's {self.kind} failed: {_describe(exc)}"
        my_task.internal_data.pop("event_value", None)


class ClockTimeDateEventDefinition(_GuardedTimerMixin, TimeDateEventDefinition):
    kind = "timeDate"

    def has_fired(self, my_task: Any) -> bool:
        if self._failed(my_task):
            return False
        now = _now(my_task)
        try:
            event_value = my_task._get_internal_data("event_value")
            if event_value is None:
                event_value = self._value(my_task)
                timer_bounds.date(event_value, now, _limits(my_task))
                my_task._set_internal_data(event_value=event_value)
            due = timer_bounds.date(event_value, now, _limits(my_task))
        except Exception as exc:
            self._fail(my_task, exc)
            return False
        if due <= now:
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockDurationTimerEventDefinition(_GuardedTimerMixin, DurationTimerEventDefinition):
    kind = "timeDuration"

    def has_fired(self, my_task: Any) -> bool:
        if self._failed(my_task):
            return False
        now = _now(my_task)
        try:
            event_value = my_task._get_internal_data("event_value")
            if event_value is None:
                event_value = (now + timer_bounds.duration(self._value(my_task), now, _limits(my_task))).isoformat()
                my_task._set_internal_data(event_value=event_value)
            due = TimerEventDefinition.get_datetime(event_value)
        except Exception as exc:
            self._fail(my_task, exc)
            return False
        if due <= now:
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)


class ClockCycleTimerEventDefinition(_GuardedTimerMixin, CycleTimerEventDefinition):
    """Repeats on a non-interrupting boundary event or event sub-process start (one path per firing).
    Anywhere else (an interrupting boundary, an intermediate catch event) the first occurrence fires the
    event once and it is done, as in Camunda: its token has moved on."""

    kind = "timeCycle"

    @staticmethod
    def repeats(my_task: Any) -> bool:
        return getattr(my_task.task_spec, "cancel_activity", True) is False

    def has_fired(self, my_task: Any) -> bool:
        if self.repeats(my_task) or my_task._get_internal_data("event_fired", False):
            return super().has_fired(my_task)
        if self.cycle_complete(my_task):
            my_task._set_internal_data(event_fired=True)
        return my_task._get_internal_data("event_fired", False)

    def update_task(self, my_task: Any) -> None:
        if self.repeats(my_task):
            super().update_task(my_task)

    def cycle_complete(self, my_task: Any) -> bool:
        """True when the cycle fires now. A late firing fires once: the occurrences missed meanwhile are
        skipped (each firing still counts one of the R<n> repetitions, so R2 fires twice in all)."""
        if self._failed(my_task):
            return False
        now = _now(my_task)
        limits = _limits(my_task)
        try:
            event_value = my_task._get_internal_data("event_value")
            if event_value is None:
                cycles, start, interval = timer_bounds.cycle(self._value(my_task), now, limits)
                event_value = {"cycles": cycles, "next": start.isoformat(), "duration": interval.total_seconds()}
            interval = timedelta(seconds=event_value["duration"])
            timer_bounds.check_interval(interval, self.expression, limits)
            next_event = datetime.fromisoformat(event_value["next"])
        except Exception as exc:
            self._fail(my_task, exc)
            return False
        ready = False
        if event_value["cycles"] != 0:
            if next_event <= now:
                missed = (now - next_event) // interval
                event_value["next"] = (next_event + (missed + 1) * interval).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
            return False
        my_task._set_internal_data(event_value=event_value)
        return ready


def parse_cycle(expression: str, now: datetime, limits: Limits | None = None) -> tuple[int, datetime, timedelta]:
    """Parse R[n]/[start/]duration relative to `now` (SpiffWorkflow uses the wall clock for R/duration)."""
    return timer_bounds.cycle(expression, now, limits or DEFAULT_LIMITS)


def next_due(expression_value: str, now: datetime, limits: Limits | None = None) -> datetime:
    """When a timer with this (already evaluated) value fires first, for validation and previews."""
    return timer_bounds.any_due(expression_value, now, limits or DEFAULT_LIMITS)


# -- failures -----------------------------------------------------------------------------------------

def pending_failure(workflow: Any) -> tuple[str, Any] | None:
    """(message, task) of a timer of this instance that could not be evaluated, if any."""
    for task in workflow.event_manager.tasks.values():
        message = task.internal_data.get(FAILURE)
        if message:
            return message, task
    return None


def clear_failures(workflow: Any, data: dict[str, Any] | None = None) -> list[Any]:
    """Let failed timers evaluate again (after a retry), with corrected variables if given."""
    cleared = []
    for task in list(workflow.event_manager.tasks.values()):
        if task.internal_data.pop(FAILURE, None) is not None:
            if data:
                task.data.update(data)
                if task.parent is not None:  # a waiting task takes its data from its parent on each update
                    task.parent.data.update(data)
            cleared.append(task)
    return cleared
