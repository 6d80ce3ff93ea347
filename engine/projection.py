"""Writing a step: the case's state and everything derived from it, in the caller's unit of work.

`Projector.persist` ends every service call that changes a case. In one transaction it writes the
state JSON (pruned to what is open), the variables snapshot, status and incident, the diagram
projection, the open human tasks, the waits (timers, messages, signals) and the audit events.

A step costs a handful of statements whatever the case's history: the case row is written once
(inserted, or updated with its version check), the human-task changes are known from the case's
`open_tasks` projection without reading the task rows back, new tasks and their candidates go in
one insert each, the waits are rewritten only when they changed (`waits_key`), and the audit events
are inserted together when the unit of work commits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import CursorResult, Table, bindparam, delete, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from .assignment import Assignment, AssignmentFailed, evaluate_assignment
from .errors import StateNotStorable
from .execution import (
    Incident,
    StepResult,
    _label_of,
    case_variables,
    element_states,
    form_fields,
    newly_fired_timers,
    snapshot_variables,
    timer_due,
    timer_incident,
)
from .limits import DEFAULT_LIMITS, Limits
from .models import AuditEvent, Forum, HumanTask, Instance, TaskCandidate, TaskCandidateUser, User, Wait
from .parsing import public_id
from .pruning import prune
from .sandbox.values import DataError, check_variables
from .uow import UnitOfWork

# SQLAlchemy types a mapped class's __table__ as FromClause; it is a Table.
_TASKS = cast(Table, HumanTask.__table__)
_CANDIDATES = cast(Table, TaskCandidate.__table__)
_CANDIDATE_USERS = cast(Table, TaskCandidateUser.__table__)
_WAITS = cast(Table, Wait.__table__)
# RETURNING the spiff id too: rows come back in any order, but in one statement (SQLite returns rows
# in parameter order only one row per statement).
_INSERT_TASKS = insert(_TASKS).returning(_TASKS.c.spiff_task_id, _TASKS.c.id)
_CANCEL_TASKS = (update(_TASKS).where(_TASKS.c.spiff_task_id.in_(bindparam("spiff_ids", expanding=True)),
                                      _TASKS.c.status == "open")
                 .values(status="cancelled", completed_at=bindparam("now"))
                 .returning(_TASKS.c.id, _TASKS.c.spiff_task_id))


_INSTANCES = cast(Table, Instance.__table__)


# Every column a step may change, in one statement compiled once (the values of unchanged columns
# are written as they are).
_STEP_COLUMNS = ("definition_id", "status", "state_json", "variables", "ended_at", "next_due_at",
                 "incident_message", "incident_element_id", "incident_at", "completed_elements",
                 "active_elements", "open_tasks", "waits_key")
_UPDATE_CASE = (update(_INSTANCES)
                .where(_INSTANCES.c.id == bindparam("case_id"), _INSTANCES.c.version == bindparam("seen"))
                .values({name: bindparam(name) for name in _STEP_COLUMNS} | {"version": bindparam("next")}))


def write_case_row(session: Session, inst: Instance) -> None:
    """Write the case row now: a new case is inserted (the ORM assigns its id); a changed one is
    updated with one statement against the version it was read at (StaleDataError, which the unit of
    work repeats, when another writer came first), without the ORM's flush machinery."""
    if inst.id is None:
        session.flush()
        return
    state = sa_inspect(inst)
    changed = set(state.committed_state)
    if not changed:
        return
    if not changed <= set(_STEP_COLUMNS):
        session.flush()  # something else changed too (the business key, say): the ORM writes it all
        return
    seen = inst.version
    params = {name: getattr(inst, name) for name in _STEP_COLUMNS}
    with session.no_autoflush:  # else the ORM would write the same changes first
        # An UPDATE's result is a CursorResult (Session.execute is typed as returning any Result).
        result = cast(CursorResult[Any], session.execute(_UPDATE_CASE, dict(params, case_id=inst.id, seen=seen,
                                                                            next=seen + 1)))
    if result.rowcount != 1:
        raise StaleDataError(f"case {inst.id} was changed by another writer (version {seen})")
    for key in changed:
        set_committed_value(inst, key, params[key])
    set_committed_value(inst, "version", seen + 1)


def close_task_row(session: Session, row: HumanTask, **values: Any) -> None:
    """Mark a human task completed with one statement (the step that completed it writes the rest)."""
    values["status"] = "completed"
    with session.no_autoflush:
        session.execute(update(_TASKS).where(_TASKS.c.id == row.id).values(**values))
    for key, value in values.items():
        set_committed_value(row, key, value)


@dataclass
class TaskPlan:
    """What a step does to the case's human tasks: decided before anything is written."""

    cancel: dict[str, list[Any]] = field(default_factory=dict)  # spiff id -> [element id, name]
    new: list[tuple[Any, Assignment]] = field(default_factory=list)
    incident: Incident | None = None


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
        is_new = inst.id is None
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
        with session.no_autoflush:  # the case row is written once, below
            plan = self._plan_tasks(session, inst, wf, now)
        incident = plan.incident or incident
        if incident is not None:
            inst.status = "incident"
            inst.incident_message = incident.message[:4000]
            inst.incident_element_id = incident.element_id
            inst.incident_at = now
            self.audit(session, inst, "incident", user=user, element_id=incident.element_id,
                       details={"message": inst.incident_message})
        waits = self._waits(inst, wf, now)
        waits_key = hashlib.sha1(json.dumps(waits, default=str).encode()).hexdigest()
        waits_changed = waits_key != inst.waits_key and not (is_new and not waits)
        inst.waits_key = waits_key
        inst.next_due_at = min((w["due_at"] for w in waits if w["due_at"] is not None), default=None)
        open_tasks = {k: v for k, v in (inst.open_tasks or {}).items() if k not in plan.cancel}
        open_tasks.update({str(task.id): [public_id(task.task_spec.bpmn_id), self._task_name(task)]
                           for task, _ in plan.new})
        inst.open_tasks = open_tasks
        write_case_row(session, inst)
        self._write_tasks(session, inst, plan, now, user)
        if waits_changed:
            if not is_new:
                session.execute(delete(_WAITS).where(_WAITS.c.instance_id == inst.id))
            if waits:
                session.execute(insert(_WAITS), [dict(w, instance_id=inst.id) for w in waits])
        uow = UnitOfWork.of(session)
        if uow is not None:  # the next step of the case in this process continues with this workflow
            uow.after_commit(lambda: self.codec.workflows.put(inst.id, inst.version, wf))
            uow.written_waits[inst.id] = waits
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
        uow = UnitOfWork.of(session)
        if uow is not None:
            uow.audit(inst, type_, user=user, element_id=element_id, task_id=task_id, details=details)
            return
        if inst is not None and inst.id is None:
            session.flush()
        session.add(AuditEvent(instance_id=inst.id if inst is not None else None, type=type_,
                               time=self.clock.now(), user=user, element_id=element_id, task_id=task_id,
                               details=details or {}))

    # -- human tasks ---------------------------------------------------------------------------------
    def _open_tasks(self, session: Session, inst: Instance) -> dict[str, list[Any]]:
        """{spiff task id: [element id, name]} of the case's open task rows: its projection, or (for a
        case saved before the projection existed) the rows themselves."""
        if inst.open_tasks is not None or inst.id is None:
            return dict(inst.open_tasks or {})
        rows = session.execute(select(_TASKS.c.spiff_task_id, _TASKS.c.element_id, _TASKS.c.name)
                               .where(_TASKS.c.instance_id == inst.id, _TASKS.c.status == "open")).all()
        return {spiff_id: [element, name] for spiff_id, element, name in rows}

    def _plan_tasks(self, session: Session, inst: Instance, wf: BpmnWorkflow, now: datetime) -> TaskPlan:
        """Which rows to open and which to cancel; the incident of the first task whose assignment
        could not be evaluated (no row is made for it, so nobody gets an invisible task)."""
        ready = {} if inst.status in ("completed", "terminated") else {
            str(t.id): t for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.manual}
        known = self._open_tasks(session, inst)
        plan = TaskPlan(cancel={spiff_id: info for spiff_id, info in known.items() if spiff_id not in ready})
        for spiff_id, task in ready.items():
            if spiff_id in known:
                continue
            try:
                assignment = evaluate_assignment(task, now)
                self._check_names_exist(session, assignment)
            except AssignmentFailed as exc:
                plan.incident = plan.incident or Incident(exc.message, public_id(task.task_spec.bpmn_id))
                continue
            plan.new.append((task, assignment))
        return plan

    def _write_tasks(self, session: Session, inst: Instance, plan: TaskPlan, now: datetime,
                     user: str | None) -> None:
        if plan.cancel:
            for row_id, spiff_id in session.execute(_CANCEL_TASKS, {"spiff_ids": list(plan.cancel), "now": now}):
                element, name = plan.cancel[spiff_id]
                self.audit(session, inst, "task_cancelled", user=user, element_id=element, task_id=row_id,
                           details={"name": name})
        if not plan.new:
            return
        values = [self._task_values(inst, task, assignment, now) for task, assignment in plan.new]
        by_spiff_id: dict[str, int] = dict(session.execute(_INSERT_TASKS, values).all())
        ids = [by_spiff_id[row["spiff_task_id"]] for row in values]
        uow = UnitOfWork.of(session)
        if uow is not None:
            uow.written_tasks.extend(dict(row, id=row_id) for row_id, row in zip(ids, values, strict=True))
        candidates = [{"task_id": row_id, "forum": forum} for row_id, row in zip(ids, values, strict=True)
                      for forum in dict.fromkeys(row["candidate_groups"])]
        if candidates:
            session.execute(insert(_CANDIDATES), candidates)
        candidate_users = [{"task_id": row_id, "username": name} for row_id, row in zip(ids, values, strict=True)
                           for name in dict.fromkeys(row["candidate_users"])]
        if candidate_users:
            session.execute(insert(_CANDIDATE_USERS), candidate_users)
        for row_id, row in zip(ids, values, strict=True):
            self.audit(session, inst, "task_created", user=None, element_id=row["element_id"], task_id=row_id,
                       details={"name": row["name"], "forum": row["forum"]})

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

    def _task_name(self, task: Any) -> str:
        spec = task.task_spec
        name = spec.bpmn_name or public_id(spec.bpmn_id) or spec.name
        label = self._instance_label(task)
        return (f"{name}: {label}" if label else name)[:255]

    def _task_values(self, inst: Instance, task: Any, assignment: Assignment, now: datetime) -> dict[str, Any]:
        spec = task.task_spec
        groups = assignment.candidate_groups
        return {
            "instance_id": inst.id, "spiff_task_id": str(task.id), "element_id": public_id(spec.bpmn_id),
            "name": self._task_name(task), "forum": groups[0] if groups else None, "candidate_groups": groups,
            "assignee": assignment.assignee, "due_at": assignment.due_at, "follow_up_at": assignment.follow_up_at,
            "priority": assignment.priority, "candidate_users": assignment.candidate_users,
            "fields": form_fields(spec), "documentation": (getattr(spec, "extensions", None) or {}).get("documentation"),
            "status": "open", "created_at": now, "completed_at": None, "completed_by": None}

    def _new_task_row(self, inst: Instance, task: Any, assignment: Assignment, now: datetime) -> HumanTask:
        return HumanTask(**self._task_values(inst, task, assignment, now))

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

    # -- waits ---------------------------------------------------------------------------------------
    @staticmethod
    def _waits(inst: Instance, wf: BpmnWorkflow, now: datetime) -> list[dict[str, Any]]:
        """What the case waits for besides people: timers (with their due time), messages, signals."""
        if inst.status in ("completed", "terminated"):
            return []
        waits: list[dict[str, Any]] = []
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
                waits.append({"kind": "timer", "element_id": element, "name": task.task_spec.bpmn_name,
                              "due_at": due})
            elif isinstance(definition, MessageEventDefinition):
                waits.append({"kind": "message", "element_id": element, "name": definition.name, "due_at": None})
            elif isinstance(definition, SignalEventDefinition):
                waits.append({"kind": "signal", "element_id": element, "name": definition.name, "due_at": None})
        return waits
