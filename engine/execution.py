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
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import spiff_patches  # noqa: F401 - lifts SpiffWorkflow's task-tree depth limit
from .assignment import Assignment, AssignmentFailed, evaluate_assignment
from .bpmn.scopes import scope_variables
from .budget import LimitExceeded, StepBudget
from .errors import StateNotStorable
from .limits import DEFAULT_LIMITS, Limits
from .models import AuditEvent, Forum, HumanTask, Instance, TaskCandidate, TaskCandidateUser, User, Wait
from .parsing import public_id
from .pruning import prune
from .sandbox.values import DataError, check_variables
from .timers import next_due, pending_failure
from .uow import UnitOfWork


@dataclass
class Incident:
    message: str
    element_id: str | None


@dataclass
class StepResult:
    incident: Incident | None = None
    fired_timers: list[str] = field(default_factory=list)


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


def newly_fired_timers(wf: BpmnWorkflow) -> list[str]:
    """One-shot timers that fired since the last save, wherever they fired (at start, in run_due,
    after a message...). Each is marked so it is reported once."""
    fired = []
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


class Projector:
    """Writes a workflow's state and everything derived from it in the caller's session."""

    def __init__(self, codec: Any, clock: Any, limits: Limits = DEFAULT_LIMITS) -> None:
        self.codec = codec
        self.clock = clock
        self.limits = limits
        # Set by the Engine to RuntimeService.dispatch_thrown: delivers messages to other instances.
        self.dispatcher: Any = None

    def persist(self, session: Session, inst: Instance, wf: BpmnWorkflow, *, user: str | None,
                step: StepResult | None = None) -> None:
        now = self.clock.now()
        for element in (step.fired_timers if step else []) + newly_fired_timers(wf):
            self.audit(session, inst, "timer_fired", user=None, element_id=element)
        thrown = wf.get_events()  # messages nothing in this instance caught: for other instances
        completed, active = element_states(wf)
        inst.completed_elements = sorted(set(inst.completed_elements or []) | completed)
        inst.active_elements = sorted(active)
        prune(wf)  # the finished part of the tree is history: the audit trail and projections keep it
        try:
            inst.state_json = self.codec.dump(wf)
        except StateNotStorable as exc:
            exc.instance_id = inst.id
            raise
        uow = UnitOfWork.of(session)
        if uow is not None:  # the next step of the case in this process continues with this workflow
            uow.after_commit(lambda: self.codec.workflows.put(inst.id, inst.version, wf))
        inst.variables = snapshot_variables(wf)
        incident = (step.incident if step else None) or timer_incident(wf) or self._check_data(wf)
        if incident is None and wf.is_completed() and inst.status not in ("terminated",):
            incident = self._check_finished(wf)
            if incident is None:
                inst.status = "completed"
                inst.ended_at = now
                self.audit(session, inst, "completed", user=user)
        if incident is None and inst.status == "active":
            incident = self._check_alive(wf)
        incident = self._sync_tasks(session, inst, wf, now, user) or incident
        if incident is not None:
            inst.status = "incident"
            inst.incident_message = incident.message[:4000]
            inst.incident_element_id = incident.element_id
            inst.incident_at = now
            self.audit(session, inst, "incident", user=user, element_id=incident.element_id,
                       details={"message": inst.incident_message})
        self._sync_waits(session, inst, wf, now)
        if thrown and self.dispatcher is not None:
            self.dispatcher(session, inst, thrown, user)

    def _check_data(self, wf: BpmnWorkflow) -> Incident | None:
        """The case's variables are JSON within the size bounds, or the case stops here."""
        task = wf.last_task
        data = case_variables(wf)
        data.pop("data_objects", None)
        try:
            check_variables(data, self.limits.max_variable_bytes, self.limits.max_instance_bytes,
                            self.limits.max_data_depth)
        except DataError as exc:
            element = public_id(task.task_spec.bpmn_id) if task is not None else None
            return Incident(f"the case's data cannot be stored: {exc}", element)
        return None

    @staticmethod
    def _check_finished(wf: BpmnWorkflow) -> Incident | None:
        """A case is completed only when no step of it is left: never because the engine lost sight of
        open steps (as SpiffWorkflow's depth-limited iterators once did after 1,000 levels)."""
        for workflow in (wf, *wf.subprocesses.values()):
            for task in workflow.tasks.values():
                if task.state & TaskState.DEFINITE_MASK:
                    return Incident("the engine reported the case as completed while step "
                                    f"'{public_id(task.task_spec.bpmn_id) or task.task_spec.name}' is still open; "
                                    "the case was stopped instead", public_id(task.task_spec.bpmn_id))
        return None

    @staticmethod
    def _check_alive(wf: BpmnWorkflow) -> Incident | None:
        """A running case must wait for something that can happen: a person, a timer, a message, a
        signal. Otherwise (a parallel join waiting for a branch that ended elsewhere, say) it would sit
        in every list as running forever; it becomes an incident instead."""
        if wf.event_manager.tasks or wf.get_next_task(state=TaskState.READY) is not None:
            return None
        stuck = wf.get_next_task(state=TaskState.WAITING | TaskState.STARTED)
        element = public_id(stuck.task_spec.bpmn_id) if stuck is not None else None
        what = f"step '{element}' waits" if element else "it waits"
        return Incident(f"the case cannot continue: {what} for something that can no longer happen "
                        "(e.g. a parallel join waiting for a branch that ended elsewhere)", element)

    def audit(self, session: Session, inst: Any, type_: str, *, user: str | None,
              element_id: str | None = None, task_id: int | None = None,
              details: dict[str, Any] | None = None) -> None:
        """An audit event of the case `inst` (or of none), written with the unit of work's others."""
        if inst is not None and inst.id is None:
            session.flush()
        instance_id = inst.id if inst is not None else None
        uow = UnitOfWork.of(session)
        if uow is not None:
            uow.audit(instance_id, type_, user=user, element_id=element_id, task_id=task_id, details=details)
        else:
            session.add(AuditEvent(instance_id=instance_id, type=type_, time=self.clock.now(), user=user,
                                   element_id=element_id, task_id=task_id, details=details or {}))

    def _sync_tasks(self, session: Session, inst: Instance, wf: BpmnWorkflow, now: datetime,
                    user: str | None) -> Incident | None:
        """Open a row for each new READY human task, cancel rows whose task is gone. Returns the
        incident of the first task whose assignment could not be evaluated (no row is made for it)."""
        if inst.id is None:
            session.flush()
        ready = {} if inst.status in ("completed", "terminated") else {
            str(t.id): t for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.manual}
        open_rows = session.scalars(select(HumanTask).where(
            HumanTask.instance_id == inst.id, HumanTask.status == "open")).all()
        known = {row.spiff_task_id for row in open_rows}
        for row in open_rows:
            if row.spiff_task_id not in ready:
                row.status = "cancelled"
                row.completed_at = now
                self.audit(session, inst, "task_cancelled", user=user, element_id=row.element_id, task_id=row.id,
                           details={"name": row.name})
        incident = None
        for spiff_id, task in ready.items():
            if spiff_id in known:
                continue
            try:
                assignment = evaluate_assignment(task, now)
                self._check_names_exist(session, assignment)
            except AssignmentFailed as exc:
                incident = incident or Incident(exc.message, public_id(task.task_spec.bpmn_id))
                continue
            row = self._new_task_row(inst, task, assignment, now)
            session.add(row)
            session.flush()
            for forum in dict.fromkeys(row.candidate_groups or []):
                session.add(TaskCandidate(task_id=row.id, forum=forum))
            for username in dict.fromkeys(row.candidate_users or []):
                session.add(TaskCandidateUser(task_id=row.id, username=username))
            self.audit(session, inst, "task_created", user=None, element_id=row.element_id, task_id=row.id,
                       details={"name": row.name, "forum": row.forum})
        return incident

    @staticmethod
    def _check_names_exist(session: Session, assignment: Assignment) -> None:
        """Forums and users that came from expressions must exist, or nobody would ever see the task."""
        if assignment.computed_groups:
            known = set(session.scalars(select(Forum.name).where(Forum.name.in_(assignment.computed_groups))))
            missing = [g for g in assignment.computed_groups if g not in known]
            if missing:
                raise AssignmentFailed(f"the task is for forum '{missing[0]}', which does not exist")
        if assignment.computed_users:
            known = set(session.scalars(select(User.username).where(User.username.in_(assignment.computed_users))))
            missing = [u for u in assignment.computed_users if u not in known]
            if missing:
                raise AssignmentFailed(f"the task is for user '{missing[0]}', who does not exist")

    def _new_task_row(self, inst: Instance, task: Any, assignment: Assignment, now: datetime) -> HumanTask:
        spec = task.task_spec
        ext = getattr(spec, "extensions", {}) or {}
        name = spec.bpmn_name or public_id(spec.bpmn_id)
        label = self._instance_label(task)
        if label:
            name = f"{name}: {label}"
        groups = assignment.candidate_groups
        return HumanTask(
            instance_id=inst.id, spiff_task_id=str(task.id), element_id=public_id(spec.bpmn_id),
            name=name[:255], forum=groups[0] if groups else None, candidate_groups=groups,
            assignee=assignment.assignee, due_at=assignment.due_at, follow_up_at=assignment.follow_up_at,
            priority=assignment.priority, candidate_users=assignment.candidate_users, fields=form_fields(spec),
            documentation=ext.get("documentation"), status="open", created_at=now)

    @staticmethod
    def _instance_label(task: Any) -> str | None:
        """The item a multi-instance task or sub-process runs for ("Lokaludvalg Valby", "fsb")."""
        current = task
        for _ in range(10):
            parent = current.parent
            if parent is not None and isinstance(parent.task_spec, MultiInstanceTask):
                item = parent.task_spec.input_item or parent.task_spec.output_item
                return _label_of(current.data.get(item.bpmn_id)) if item is not None else None
            parent_id = getattr(current.workflow, "parent_task_id", None)
            if parent_id is None:
                return None
            current = current.workflow.top_workflow.get_task_from_id(parent_id)
        return None

    def _sync_waits(self, session: Session, inst: Instance, wf: BpmnWorkflow, now: datetime) -> None:
        for old in session.scalars(select(Wait).where(Wait.instance_id == inst.id)).all():
            session.delete(old)
        if inst.status in ("completed", "terminated"):
            inst.next_due_at = None
            return
        next_at = None
        for task in wf.event_manager.tasks.values():
            if task.state != TaskState.WAITING or task.workflow.tasks.get(task.id) is not task:
                continue  # fired and not yet run, or dropped from the tree
            definition = getattr(task.task_spec, "event_definition", None)
            element = public_id(task.task_spec.bpmn_id)
            if isinstance(definition, TimerEventDefinition):
                due = timer_due(task, now)
                if due is None and isinstance(definition, CycleTimerEventDefinition) \
                        and task.internal_data.get("event_fired"):
                    continue  # a cycle that has fired all its repetitions
                session.add(Wait(instance_id=inst.id, kind="timer", element_id=element,
                                 name=task.task_spec.bpmn_name, due_at=due))
                if due is not None and (next_at is None or due < next_at):
                    next_at = due
            elif isinstance(definition, MessageEventDefinition):
                session.add(Wait(instance_id=inst.id, kind="message", element_id=element, name=definition.name))
            elif isinstance(definition, SignalEventDefinition):
                session.add(Wait(instance_id=inst.id, kind="signal", element_id=element, name=definition.name))
        inst.next_due_at = next_at
