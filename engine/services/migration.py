"""Instance migration: move running instances from one version of a process definition to another.

`plan` is the dry run: for each running instance it re-bases the workflow in memory exactly as
`migrate` would and reports whether it can move and why not, plus what changed between the versions.
`migrate` moves each instance in its own transaction: either the instance runs on the new version
afterwards (state, open tasks, waits, audit event "migrated") or nothing about it changed.
The rules for what may move are in engine/rebase.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..assignment import AssignmentFailed, evaluate_assignment
from ..bpmn.subprocesses import AlmenCallActivity, CallResolutionError, called_elements
from ..calls import CallResolver, called_name, definition_id_of
from ..errors import EngineError, InvalidInputError, NotFoundError
from ..execution import StepResult, advance
from ..models import Definition, HumanTask, Instance, TaskCandidate, TaskCandidateUser
from ..rebase import Rebase, RebaseError, SpecChanges, rebase, spec_changes

if TYPE_CHECKING:
    from ..projection import Projector
    from ..scripting import RestrictedScriptEngine
    from ..serialization import WorkflowCodec
    from ..uow import UnitOfWorkFactory
    from .definitions import DefinitionService
    from .runtime import RuntimeService

log = logging.getLogger(__name__)

RUNNING = ("active", "suspended", "incident")
FINISHED = ("completed", "terminated")
# What a refreshed open task takes from the new version (its id, assignee and creation time stay;
# due and follow-up dates count from its creation).
TASK_FIELDS = ("name", "forum", "candidate_groups", "candidate_users", "due_at", "follow_up_at", "priority",
               "fields", "documentation")
TASK_FIELD_NAMES = {"name": "name", "forum": "forum", "candidate_groups": "candidate groups",
                    "candidate_users": "candidate users", "due_at": "due date", "follow_up_at": "follow-up date",
                    "priority": "priority", "fields": "form", "documentation": "documentation"}


@dataclass
class InstanceMigration:
    """One instance in a migration report. `outcome` is "migrated" (done), "migratable" (dry run: it
    would be), "refused" (`reasons` says why; nothing changed) or "not_running" (completed or
    terminated instances are never migrated)."""

    id: int
    business_key: str | None
    status: str
    outcome: str
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    active_elements: list[str] = field(default_factory=list)
    tasks: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MigrationReport:
    key: str
    from_version: int
    to_version: int
    dry_run: bool
    changes: SpecChanges
    instances: list[InstanceMigration]
    finished: int = 0  # completed/terminated instances of the source version (not listed unless asked for)

    def count(self, outcome: str) -> int:
        return sum(1 for i in self.instances if i.outcome == outcome)

    @property
    def refused(self) -> int:
        return self.count("refused")

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "from_version": self.from_version, "to_version": self.to_version,
            "dry_run": self.dry_run, "changes": self.changes.to_dict(),
            "instances": [i.to_dict() for i in self.instances],
            "counts": {"migrated": self.count("migrated"), "migratable": self.count("migratable"),
                       "refused": self.refused, "not_running": self.count("not_running"),
                       "finished_not_listed": self.finished},
        }


class _Refused(Exception):
    def __init__(self, reasons: list[str], active: list[str] | None = None) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.active = active or []


@dataclass
class _Moved:
    notes: list[str]
    active: list[str]
    tasks: list[int]


class MigrationService:
    def __init__(self, uow: UnitOfWorkFactory,
                 codec: WorkflowCodec,
                 projector: Projector,
                 script_engine: RestrictedScriptEngine,
                 runtime: RuntimeService,
                 definitions: DefinitionService) -> None:
        self._uow = uow
        self._codec = codec
        self._projector = projector
        self._script_engine = script_engine
        self._runtime = runtime
        self._definitions = definitions

    def plan(self, key: str, from_version: int, to_version: int,
             instance_ids: list[int] | None = None) -> MigrationReport:
        """Dry run: what `migrate` with the same arguments would do. Nothing is written."""
        return self._run(key, from_version, to_version, instance_ids, user=None, dry_run=True)

    def migrate(self, key: str, from_version: int, to_version: int, instance_ids: list[int] | None = None,
                user: str | None = None) -> MigrationReport:
        """Move the running instances of version `from_version` of process `key` (or the given ones)
        to version `to_version`. Refused instances are reported and left unchanged."""
        return self._run(key, from_version, to_version, instance_ids, user=user, dry_run=False)

    # -- common ---------------------------------------------------------------------------------
    def _run(self, key: str, from_version: int, to_version: int, instance_ids: list[int] | None,
             user: str | None, dry_run: bool) -> MigrationReport:
        for name, value in (("from version", from_version), ("to version", to_version)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"the {name} must be a positive whole number")
        if from_version == to_version:
            raise InvalidInputError(f"from and to are the same version ({from_version})")
        codec = self._codec
        with self._uow.write() as uow:
            session = uow.session
            source = self._definitions.find(session, key, from_version)
            target = self._definitions.find(session, key, to_version)
            source_id, target_id = source.id, target.id
            try:
                changes = spec_changes(codec.serializer.registry, self._with_called(session, source, True),
                                       self._with_called(session, target, False))
            except RecursionError:  # SpecDiff walks the flows recursively
                raise InvalidInputError("the two versions are too deeply nested to compare") from None
            finished = 0
            if instance_ids is None:
                ids = list(session.scalars(select(Instance.id).where(
                    Instance.definition_id == source_id, Instance.status.in_(RUNNING)).order_by(Instance.id)))
                finished = session.scalar(select(func.count(Instance.id)).where(
                    Instance.definition_id == source_id, Instance.status.in_(FINISHED))) or 0
            else:
                ids = list(dict.fromkeys(instance_ids))
                found = set(session.scalars(select(Instance.id).where(Instance.id.in_(ids))))
                missing = [i for i in ids if i not in found]
                if missing:
                    raise NotFoundError(f"no instance {', '.join(map(str, missing))}")
        report = MigrationReport(key, from_version, to_version, dry_run, changes, [], finished)
        for instance_id in ids:
            report.instances.append(self._one(instance_id, source_id, target_id, to_version, user, dry_run))
        return report

    def _one(self, instance_id: int, source_id: int, target_id: int, to_version: int, user: str | None,
             dry_run: bool) -> InstanceMigration:
        outcome: dict[str, Any] = {}

        def work(session: Session) -> _Moved:
            inst = self._runtime.instance(session, instance_id, lock=not dry_run)
            outcome.update(business_key=inst.business_key, status=inst.status)
            moved = self._move(session, inst, source_id, target_id, to_version, user, dry_run)
            outcome["status"] = inst.status
            return moved

        try:
            if dry_run:
                with self._uow.write() as uow:
                    session = uow.session
                    moved = work(session)
                    session.rollback()
            else:
                moved = self._runtime.retrying(work)
        except _Refused as refused:
            kind = "not_running" if outcome.get("status") in FINISHED else "refused"
            return InstanceMigration(instance_id, outcome.get("business_key"), outcome.get("status", "?"), kind,
                                     reasons=refused.reasons, active_elements=refused.active)
        except EngineError as exc:  # e.g. changed concurrently more often than retrying() tries
            return InstanceMigration(instance_id, outcome.get("business_key"), outcome.get("status", "?"),
                                     "refused", reasons=[exc.message])
        except Exception as exc:  # one instance's defect must not stop the others; it is left unchanged
            log.exception("migrating instance %s failed", instance_id)
            return InstanceMigration(instance_id, outcome.get("business_key"), outcome.get("status", "?"),
                                     "refused", reasons=[f"internal error: {exc.__class__.__name__}: {exc}"])
        return InstanceMigration(instance_id, outcome.get("business_key"), outcome.get("status", "?"),
                                 "migratable" if dry_run else "migrated", notes=moved.notes,
                                 active_elements=moved.active, tasks=moved.tasks)

    def _move(self, session: Session, inst: Instance, source_id: int, target_id: int, to_version: int,
              user: str | None, dry_run: bool) -> _Moved:
        if inst.status in FINISHED:
            raise _Refused([f"the instance is {inst.status}; only running instances are migrated"])
        if inst.definition_id != source_id:
            d = inst.definition
            raise _Refused([f"the instance runs '{d.key}' version {d.version}, not the version migrated from"])
        source = inst.definition
        target = session.get(Definition, target_id)
        assert target is not None
        codec = self._codec
        engine = self._script_engine
        label = f"version {to_version}"
        wf = self._runtime.load(session, inst)
        ready_before = _automatic_ready(wf)
        new_spec, new_deps = self._targets(session, wf, target)
        try:
            result: Rebase = rebase(wf, new_spec, new_deps, codec.serializer.registry, label)
        except RebaseError as exc:
            raise _Refused([f"the instance cannot be re-based on {label}: {exc}"]) from None
        if not result.ok:
            raise _Refused(result.refusals, result.active)
        try:
            # The stored form is the proof: the state must load against the new definition.
            moved = codec.load(codec.dump(wf), target.id, target.spec_json, engine,
                               resolver=CallResolver(session, codec, target))
        except Exception as exc:
            raise _Refused([f"the migrated state does not load on {label}: {exc.__class__.__name__}: {exc}"]) from None
        due_now = _automatic_ready(moved) - ready_before  # boundary events added that are due already
        if due_now and inst.status != "active":
            raise _Refused([f"a boundary event added in {label} is due already and would fire while the instance "
                            f"is {inst.status}; migrate it when it is active"], result.active)
        notes = list(result.notes)
        rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == inst.id, HumanTask.status == "open")
                               .order_by(HumanTask.id)).all()
        refreshed = self._refresh_tasks(session, inst, moved, rows, label, notes)
        if dry_run:
            return _Moved(notes, result.active, [r.id for r in rows])

        step: StepResult | None = advance(moved) if due_now else None  # they fire now, as they would have
        self._projector.audit(session, inst, "migrated", user=user, details={
            "from_version": source.version, "to_version": target.version, "from_definition_id": source.id,
            "to_definition_id": target.id, "tasks": [r.id for r in rows], "notes": notes})
        inst.definition = target
        inst.definition_id = target.id
        self._projector.persist(session, inst, moved, user=user, step=step)
        for row, fresh in refreshed:
            if row.status == "open":  # not cancelled by a boundary event that fired at once
                self._apply_row(session, row, fresh)
        return _Moved(notes, result.active, [r.id for r in rows])

    # -- called processes ------------------------------------------------------------------------
    # A called process runs inside its caller's instance (engine/calls.py), so migrating the caller
    # moves it too: to the version the call activity of the target version calls (its
    # calledElementBinding resolved now). Called processes that already ended stay as they ran.

    def _targets(self, session: Session, wf: Any, target: Definition) -> tuple[Any, dict[str, Any]]:
        """The target's process spec and the spec every sub-workflow of `wf` moves to, keyed by the
        name the sub-workflow's spec has now."""
        codec = self._codec
        resolver = CallResolver(session, codec, target)
        new_spec, new_deps = codec.specs_from_json(target.spec_json)
        mapped: dict[str, Any] = dict(new_deps)
        moved_to: dict[int, int] = {}
        roots = [(sub, old_id) for sub in wf.subprocesses.values()
                 if (old_id := definition_id_of(sub.spec.name)) is not None and "/" not in sub.spec.name]
        for sub, old_id in sorted(roots, key=lambda r: r[0].depth):  # callers before the processes they call
            key = sub.spec.name.rsplit("@", 1)[0]
            if sub.completed:
                new_id = old_id
            else:
                caller = wf.get_task_from_id(sub.parent_task_id)
                caller_spec = new_spec if caller.workflow is wf else mapped.get(caller.workflow.spec.name)
                call = caller_spec.task_specs.get(caller.task_spec.name) if caller_spec is not None else None
                if caller_spec is None or not isinstance(call, AlmenCallActivity) or call.spec != key:
                    continue  # rebase refuses: the call activity is gone or calls another process
                try:
                    new_id = resolver.find(caller_spec.name, key, call.binding, call.version).id
                except CallResolutionError as exc:
                    raise _Refused([f"the called process of '{caller.task_spec.bpmn_id}' cannot move: {exc}"]) \
                        from None
            if moved_to.setdefault(old_id, new_id) != new_id:
                raise _Refused([f"process '{key}' runs as called process twice here and would move to two "
                                "different versions"])
            old_prefix, new_prefix = called_name(key, old_id), called_name(key, new_id)
            specs = codec.called_specs(new_id, partial(resolver.spec_json, new_id))
            for name, spec in specs.items():
                mapped[old_prefix + name[len(new_prefix):]] = spec
        return new_spec, mapped

    def _with_called(self, session: Session, definition: Definition, as_deployed: bool) -> tuple[Any, dict[str, Any]]:
        """A definition's spec and sub-process specs plus the processes its call activities call (by
        process id; their sub-processes as '<process id>/<sub-process id>'), for the change report.
        calledElementBinding "latest" reads as of the definition's deployment for the source version
        (what its instances started with) and as of now for the target (what they move to)."""
        codec = self._codec
        resolver = CallResolver(session, codec, definition)
        spec, subs = codec.specs_from_json(definition.spec_json)
        subs = dict(subs)
        todo: list[tuple[str, list[Any]]] = [(spec.name, [spec, *subs.values()])]
        seen: set[str] = set()
        while todo:
            caller_name, specs = todo.pop()
            for _element, key, binding, version in called_elements(specs):
                if key in seen:
                    continue
                seen.add(key)
                try:
                    called = resolver.find(caller_name, key, "deployment" if as_deployed and binding == "latest"
                                           else binding, version)
                except CallResolutionError:
                    continue
                prefix = called_name(key, called.id)
                named = codec.called_specs(called.id, called.spec_json)
                for name, called_spec in named.items():
                    subs[key + name[len(prefix):]] = called_spec
                todo.append((prefix, list(named.values())))
        return spec, subs

    def _refresh_tasks(self, session: Session, inst: Instance, wf: Any, rows: Sequence[HumanTask], label: str,
                       notes: list[str]) -> list[tuple[HumanTask, HumanTask]]:
        """Each open task row with what the new version says about it (same id, assignee, created), as the
        projector would make it. An assignment the new version cannot evaluate refuses the instance."""
        projector = self._projector
        ready = {str(t.id): t for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.manual}
        out = []
        for row in rows:
            task = ready.get(row.spiff_task_id)
            if task is None:
                raise _Refused([f"open task {row.id} '{row.name}' would not be open on {label}"])
            try:
                assignment = evaluate_assignment(task, row.created_at)
                projector._check_names_exist(session, assignment)
                fresh = projector._new_task_row(inst, task, assignment, row.created_at)
            except AssignmentFailed as exc:
                raise _Refused([f"open task {row.id} '{row.name}' on {label}: {exc.message}"]) from None
            except Exception as exc:
                raise _Refused([f"open task {row.id} '{row.name}' cannot be set up on {label}: "
                                f"{exc.__class__.__name__}: {exc}"]) from None
            changed = [TASK_FIELD_NAMES[f] for f in TASK_FIELDS if getattr(fresh, f) != getattr(row, f)]
            if changed:
                notes.append(f"task {row.id} '{row.name}': {', '.join(changed)} from {label}")
            out.append((row, fresh))
        return out

    @staticmethod
    def _apply_row(session: Session, row: HumanTask, fresh: HumanTask) -> None:
        groups_before, users_before = list(row.candidate_groups or []), list(row.candidate_users or [])
        for name in TASK_FIELDS:
            setattr(row, name, getattr(fresh, name))
        if list(row.candidate_groups or []) != groups_before:
            session.execute(delete(TaskCandidate).where(TaskCandidate.task_id == row.id))
            for forum in dict.fromkeys(row.candidate_groups or []):
                session.add(TaskCandidate(task_id=row.id, forum=forum))
        if list(row.candidate_users or []) != users_before:
            session.execute(delete(TaskCandidateUser).where(TaskCandidateUser.task_id == row.id))
            for username in dict.fromkeys(row.candidate_users or []):
                session.add(TaskCandidateUser(task_id=row.id, username=username))


def _automatic_ready(wf: Any) -> set[str]:
    """Ids of READY steps the engine runs itself (what is left READY besides people's tasks)."""
    return {str(t.id) for t in wf.get_tasks(state=TaskState.READY) if not t.task_spec.manual}
