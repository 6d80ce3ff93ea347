"""Who a human task is for and when it is due: camunda:candidateGroups, candidateUsers, assignee,
dueDate, followUpDate and priority, evaluated when the task is created.

A value that cannot be evaluated, or that names no forum or user at all, must not create a task
that nobody can see: it raises AssignmentFailed, which the projector turns into an incident at the
task's element (the task is created once an administrator retries with corrected data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .expressions import ExpressionError, has_juel, names_to_python, timer_to_python, to_python
from .timers import next_due

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


class AssignmentFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Assignment:
    candidate_groups: list[str] = field(default_factory=list)
    candidate_users: list[str] = field(default_factory=list)
    assignee: str | None = None
    due_at: datetime | None = None
    follow_up_at: datetime | None = None
    priority: int | None = None
    # The names that came from expressions: they must exist (a literal lane or group is checked at deploy).
    computed_groups: list[str] = field(default_factory=list)
    computed_users: list[str] = field(default_factory=list)


def end_of_day(day: date) -> datetime:
    """A deadline given as a date means the end of that working day in Copenhagen."""
    return datetime(day.year, day.month, day.day, 16, 0, tzinfo=COPENHAGEN).astimezone(UTC)


def evaluate_assignment(task: Any, now: datetime) -> Assignment:
    spec = task.task_spec
    ext = getattr(spec, "extensions", None) or {}
    engine = task.workflow.script_engine
    result = Assignment()
    raw_groups = ext.get("camunda:candidateGroups")
    result.candidate_groups = _names(engine, task, raw_groups, "candidateGroups")
    if has_juel(raw_groups):
        result.computed_groups = list(result.candidate_groups)
    if not result.candidate_groups and spec.lane:
        result.candidate_groups = [spec.lane]
    raw_users = ext.get("camunda:candidateUsers")
    result.candidate_users = _names(engine, task, raw_users, "candidateUsers")
    raw_assignee = ext.get("camunda:assignee")
    assignees = _names(engine, task, raw_assignee, "assignee")
    if len(assignees) > 1:
        raise AssignmentFailed(f"camunda:assignee '{raw_assignee}' names {len(assignees)} users; a task has one "
                               "assignee (use candidateUsers for several)")
    result.assignee = assignees[0] if assignees else None
    result.computed_users = ([*result.candidate_users] if has_juel(raw_users) else []) + \
        ([result.assignee] if result.assignee and has_juel(raw_assignee) else [])
    result.due_at = _moment(engine, task, ext.get("camunda:dueDate"), now, "dueDate")
    result.follow_up_at = _moment(engine, task, ext.get("camunda:followUpDate"), now, "followUpDate")
    result.priority = _priority(engine, task, ext.get("camunda:priority"))
    return result


def _evaluate(engine: Any, task: Any, translate: Callable[[str], str], attribute: str, raw: str) -> Any:
    try:
        python = translate(raw)
    except ExpressionError as exc:
        raise AssignmentFailed(f"camunda:{attribute} '{_short(raw)}' cannot be read: {exc}") from None
    try:
        return engine.evaluate(task, python)
    except Exception as exc:
        reason = getattr(exc, "args", [None])[0] or exc.__class__.__name__
        raise AssignmentFailed(f"camunda:{attribute} '{_short(raw)}' could not be evaluated: {reason}") from None


def _names(engine: Any, task: Any, raw: str | None, attribute: str) -> list[str]:
    if not raw or not raw.strip():
        return []
    value = _evaluate(engine, task, names_to_python, attribute, raw)
    if isinstance(value, list | tuple):
        items = value
    elif isinstance(value, str):
        items = value.split(",")
    else:
        raise AssignmentFailed(f"camunda:{attribute} '{_short(raw)}' gave {_kind(value)}; expected a name or a "
                               "list of names")
    names = [str(v).strip() for v in items if isinstance(v, str | int) and str(v).strip()]
    if not names:
        raise AssignmentFailed(f"camunda:{attribute} '{_short(raw)}' gave no name")
    return names


def _moment(engine: Any, task: Any, raw: str | None, now: datetime, attribute: str) -> datetime | None:
    if not raw or not raw.strip():
        return None
    value = _evaluate(engine, task, timer_to_python, attribute, raw)
    try:
        if value is None:
            raise ValueError("no value")
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return end_of_day(value)
        text = str(value).strip()
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            return end_of_day(date.fromisoformat(text))
        return next_due(text, now)
    except Exception as exc:  # SpiffWorkflow's ISO parsers fail in many ways on text that is not ISO 8601
        raise AssignmentFailed(f"camunda:{attribute} '{_short(raw)}' gave '{_short(str(value))}', which is not a "
                               f"date, a time or an ISO 8601 duration ({exc})") from None


def _priority(engine: Any, task: Any, raw: str | None) -> int | None:
    if not raw or not raw.strip():
        return None
    text = raw.strip()
    value = int(text) if text.lstrip("-").isdigit() else _evaluate(engine, task, to_python, "priority", raw)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
        raise AssignmentFailed(f"camunda:priority '{_short(raw)}' gave {_kind(value)}; expected a whole number")
    number = int(value)
    if abs(number) > 2**31:
        raise AssignmentFailed(f"camunda:priority '{_short(raw)}' is out of range")
    return number


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
