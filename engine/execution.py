"""Stepping a SpiffWorkflow instance and projecting its state into the rows callers query.

Every service call that changes an instance ends in `Projector.persist`, inside the caller's
transaction: state JSON, open human tasks, waits (timers/messages), next due time, status,
variables snapshot and audit events are written together or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from . import spiff_patches  # noqa: F401 - lifts SpiffWorkflow's task-tree depth limit
from .bpmn.scopes import scope_variables
from .budget import LimitExceeded, StepBudget
from .limits import DEFAULT_LIMITS
from .parsing import public_id
from .timers import next_due, pending_failure


@dataclass
class Incident:
    message: str
    element_id: str | None


@dataclass
class StepResult:
    incident: Incident | None = None
    fired_timers: list[str | None] = field(default_factory=list)  # element ids


def advance(wf: BpmnWorkflow) -> StepResult:
    """Run engine steps until only people, timers or messages remain, a script fails or the step
    breaks a bound of engine/limits.py (see engine/budget.py)."""
    budget = StepBudget(wf, getattr(wf.script_engine, "limits", DEFAULT_LIMITS))
    try:
        wf.do_engine_steps(will_complete_task=budget)
        budget.check_growth()
    except LimitExceeded as exc:
        element = public_id(exc.task.task_spec.bpmn_id) if exc.task is not None else None
        return StepResult(Incident(exc.message, element))
    except SpiffWorkflowException as exc:
        task = getattr(exc, "task", None)
        element = public_id(task.task_spec.bpmn_id) if task is not None else None
        return StepResult(Incident(_exception_text(exc), element))
    except Exception as exc:  # a defect in a diagram must never take the instance down with it
        return StepResult(Incident(f"{exc.__class__.__name__}: {exc}", None))
    return StepResult()


def _exception_text(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    notes = getattr(exc, "__notes__", None) or []
    extra = [n for n in notes if n not in text]
    return text + (" (" + "; ".join(extra) + ")" if extra else "")


def every_task(wf: BpmnWorkflow, state: int | None = None) -> list[Any]:
    """Tasks of the workflow and of all its subprocesses, completed ones included, each once.
    Read from the task dicts: BpmnWorkflow.get_tasks descends only into subprocesses that are still
    running, and its tree walk neither passes a task in a lower state than the one asked for (a
    failed instance under a running multi-instance body) nor goes 1,000 levels deep."""
    tasks = list(wf.tasks.values())
    for sub in wf.subprocesses.values():
        tasks.extend(sub.tasks.values())
    return tasks if state is None else [t for t in tasks if t.has_state(state)]


def timer_tasks(wf: BpmnWorkflow) -> list[Any]:
    return [t for t in wf.event_manager.tasks.values()
            if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)]


def timer_due(task: Any, now: datetime) -> datetime | None:
    value = task._get_internal_data("event_value")
    if value is None:
        return None
    if isinstance(value, dict):
        return datetime.fromisoformat(value["next"]) if value.get("cycles") != 0 else None
    try:
        return next_due(str(value), now)
    except Exception:
        return None


def fire_due_timers(wf: BpmnWorkflow, now: datetime) -> StepResult:
    due_now = [t for t in timer_tasks(wf) if (due := timer_due(t, now)) is not None and due <= now]
    # One-shot timers are audited from the workflow state (newly_fired_timers); a cycle timer keeps
    # waiting after each firing, so its firings are counted here.
    fired = [public_id(t.task_spec.bpmn_id) for t in due_now
             if isinstance(t.task_spec.event_definition, CycleTimerEventDefinition)]
    result = StepResult()
    if due_now:
        try:
            wf.refresh_timers()
        except Exception as exc:  # whatever a firing timer's path raises is an incident on its element
            task = getattr(exc, "task", None)
            element = public_id(task.task_spec.bpmn_id) if task is not None else None
            text = _exception_text(exc) if isinstance(exc, SpiffWorkflowException) else f"{exc.__class__.__name__}: {exc}"
            return StepResult(Incident(text, element), fired_timers=[])
        result = advance(wf)
    result.fired_timers = fired
    return result


def timer_incident(wf: BpmnWorkflow) -> Incident | None:
    """A timer whose expression failed or is out of bounds (timers.py records it instead of raising)."""
    failure = pending_failure(wf)
    if failure is None:
        return None
    message, task = failure
    return Incident(message, public_id(task.task_spec.bpmn_id))


def newly_fired_timers(wf: BpmnWorkflow) -> list[str | None]:
    """One-shot timers that fired since the last save, wherever they fired (at start, in run_due,
    after a message...). Each is marked so it is reported once."""
    fired: list[str | None] = []
    for task in every_task(wf, TaskState.COMPLETED):
        definition = getattr(task.task_spec, "event_definition", None)
        if (isinstance(definition, TimerEventDefinition)
                and not isinstance(definition, CycleTimerEventDefinition)
                and not task.internal_data.get("audited")):
            # A catching timer only completes by firing (SpiffWorkflow resets event_fired after).
            task.internal_data["audited"] = True
            fired.append(public_id(task.task_spec.bpmn_id))
    return fired


def case_variables(wf: BpmnWorkflow) -> dict[str, Any]:
    """The case's variables as they stand (not yet made JSON): what snapshot_variables reports and
    Projector._check_data bounds."""
    store = scope_variables(wf)  # the process scope's current variables (engine/bpmn/scopes.py)
    if store is not None:
        data = dict(store)
        if wf.data.get("data_objects"):
            data["data_objects"] = wf.data["data_objects"]
        return data
    data = {}  # state saved before variable scopes, until its next task completes
    if wf.last_task is not None and wf.last_task.workflow is wf:
        data.update(wf.last_task.data)
    for state in (TaskState.WAITING, TaskState.STARTED, TaskState.READY):
        # Case variables live in the top-level process; a sub-process's locals (the current item of a
        # multi-instance, say) are not the case's.
        for t in wf.get_tasks(state=state, skip_subprocesses=True):
            if t.parent is None or not isinstance(t.parent.task_spec, MultiInstanceTask):
                data.update(t.data)
    data.update(wf.data)
    if not data.get("data_objects"):
        data.pop("data_objects", None)
    return data


def element_states(wf: BpmnWorkflow) -> tuple[set[str], set[str]]:
    """BPMN ids of the steps this workflow holds as completed, and of those now active."""
    completed: set[str] = set()
    active: set[str] = set()
    for task in every_task(wf):
        bpmn_id = getattr(task.task_spec, "bpmn_id", None)
        if not bpmn_id:
            continue
        if task.state == TaskState.COMPLETED:
            completed.add(public_id(bpmn_id) or bpmn_id)
        elif task.state & _ACTIVE:
            active.add(public_id(bpmn_id) or bpmn_id)
    return completed, active


_ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR


def snapshot_variables(wf: BpmnWorkflow) -> dict[str, Any]:
    return json.loads(json.dumps(case_variables(wf), default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set):
        return sorted(value)
    return str(value)


def form_fields(task_spec: Any) -> list[dict[str, Any]]:
    return list((getattr(task_spec, "extensions", None) or {}).get("form") or [])


LABEL_KEYS = ("navn", "name", "organisation", "lokaludvalg", "udvalg", "forvaltning", "titel", "title")


def _label_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in LABEL_KEYS:
            if isinstance(value.get(key), str):
                return value[key]
    return None
