"""Re-base a running workflow on another version of its process: the core of instance migration.

SpiffWorkflow's diff utilities (SpiffWorkflow.bpmn.util.diff) align the task specs of two versions,
chiefly by BPMN id (SpecDiff), and list the tasks of a running workflow whose specs were removed or
changed (WorkflowDiff). On top of them this module decides, like Camunda 7's automatic migration plan
("map equal activities" plus its validation), whether an instance may move, and moves it:

- Every *active* element (a READY, WAITING, STARTED or ERROR task: open user tasks, timer and message
  waits, running sub-processes and call activities, joins waiting for branches, failed steps) must
  exist in the new version with the same id and type. What it waits for must not have changed (its
  event, its called process, its multi-instance or join configuration); its name, documentation,
  form, forum, due date and outgoing flows are taken from the new version. A step that has not run
  yet (a failed step to be retried) may change in any way but its type.
- The instance must not be inside parallel branches whose split gained or lost a branch: the join
  would wait for a branch that never comes.
- Boundary events follow the new version: events added to an active task start waiting now, events
  removed stop waiting (Camunda does the same for unmapped boundary events).
- Completed steps whose element was removed leave the task tree (the audit trail keeps them).
- Active tasks keep their ids, data and internal state (a timer keeps its due time); everything
  predicted after them is predicted again from the new version.

SpiffWorkflow's own `migrate_workflow` is not used for the last step: it resets every READY and
WAITING branch, which restarts timers (their due time is recomputed from now) and replaces the
data of open tasks with their parent's.

Nothing here touches the database: `rebase` changes the workflow in memory or reports why not.
"""

from __future__ import annotations

from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, diff_dependencies, filter_tasks
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState

from .parsing import public_id

ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
PREDICTED = TaskState.FUTURE | TaskState.PREDICTED_MASK

# Attributes of an active element that may differ in the new version: they are read again when the
# element continues (the task row is refreshed, the outgoing flows are predicted again; a running
# called process moves to the version the new call activity calls, services/migration.py).
REFRESHED = frozenset({
    "bpmn_name", "description", "documentation", "lane", "extensions", "form", "inputs", "outputs",
    "data_output_associations", "lookahead", "in_mappings", "out_mappings", "binding", "version",
})

# Readable names of SpiffWorkflow's spec attributes, for reports.
ATTRIBUTE_NAMES = {
    "typename": "type", "bpmn_name": "name", "inputs": "incoming flows", "outputs": "outgoing flows",
    "extensions": "properties", "form": "form", "event_definition": "event", "spec": "called process",
    "script": "script", "cond_task_specs": "conditions", "default_task_spec": "default flow",
    "cancel_activity": "interrupting", "cardinality": "multi-instance", "data_input": "multi-instance",
    "data_output": "multi-instance", "input_item": "multi-instance", "output_item": "multi-instance",
    "condition": "completion condition", "task_spec": "multi-instance", "io_specification": "data inputs/outputs",
    "data_input_associations": "data inputs", "data_output_associations": "data outputs",
    "decision_ref": "decision", "lane": "lane", "documentation": "documentation", "split_task": "split",
    "threshold": "join", "cancel": "join", "collection": "multi-instance", "element_variable": "multi-instance",
    "binding": "called process version", "version": "called process version",
    "in_mappings": "variables passed in", "out_mappings": "variables passed out",
}


def describe(attributes: list[str]) -> list[str]:
    hidden = ("description", "lookahead", "name", "bpmn_id")  # the id itself is reported as "id"
    return list(dict.fromkeys(ATTRIBUTE_NAMES.get(a, a) for a in attributes if a not in hidden))


def element_label(spec: Any) -> str:
    return public_id(getattr(spec, "bpmn_id", None)) or spec.name


def _type(spec: Any) -> str:
    return type(spec).__name__


# -- what changed between two versions ------------------------------------------------------------

@dataclass
class ElementChange:
    process: str
    element_id: str
    type: str
    changes: list[str] = field(default_factory=list)
    new_id: str | None = None  # set when SpiffWorkflow aligned the element with one of another id

    def to_dict(self) -> dict[str, Any]:
        return {"process": self.process, "element_id": self.element_id, "type": self.type, "changes": self.changes,
                "new_id": self.new_id}


@dataclass
class SpecChanges:
    """Elements added, removed and changed from one version to the other (top process and every
    sub-process or called process it embeds). Internal SpiffWorkflow specs are left out."""

    added: list[ElementChange] = field(default_factory=list)
    removed: list[ElementChange] = field(default_factory=list)
    changed: list[ElementChange] = field(default_factory=list)
    # The automatic migration plan, as Camunda's mapEqualActivities builds it: every element that
    # exists with the same id and type in both versions maps to itself.
    mapped: list[ElementChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: [e.to_dict() for e in getattr(self, k)] for k in ("added", "removed", "changed", "mapped")}


def process_label(spec_name: str) -> str:
    """A (sub-)process as the diagram names it: a called process version runs under '<key>@<definition
    id>' and its sub-processes under '<key>@<definition id>/<sub-process id>' (engine/calls.py)."""
    if "@" not in spec_name:
        return spec_name
    head, _, sub = spec_name.partition("/")
    return sub or head.rsplit("@", 1)[0]


def _public(spec: Any) -> bool:
    return bool(getattr(spec, "bpmn_id", None))


def _refine(old: Any, new: Any | None, what: list[str]) -> list[str]:
    """Drop differences that are not differences: SpiffWorkflow keeps the Camunda form both in `form`
    and in `extensions`, and a timer's event definition carries the element's name."""
    if "event_definition" in what and new is not None:
        a, b = getattr(old, "event_definition", None), getattr(new, "event_definition", None)
        if isinstance(a, TimerEventDefinition) and b is not None and type(a) is type(b) \
                and a.expression == b.expression:
            what = [x for x in what if x != "event_definition"]
    if "extensions" in what and new is not None:
        strip = ("form",)
        old_ext = {k: v for k, v in (getattr(old, "extensions", None) or {}).items() if k not in strip}
        new_ext = {k: v for k, v in (getattr(new, "extensions", None) or {}).items() if k not in strip}
        if old_ext == new_ext:
            what = [a for a in what if a != "extensions"]
    return what


def _collect(changes: SpecChanges, process: str, diff: SpecDiff) -> None:
    seen: set[tuple[int, str]] = set()

    def add(target: list[ElementChange], spec: Any, what: list[str], new: Any = None) -> None:
        key = (id(target), element_label(spec))
        if _public(spec) and key not in seen:
            seen.add(key)
            renamed = element_label(new) if new is not None and new.name != spec.name else None
            target.append(ElementChange(process, element_label(spec), _type(spec), what, renamed))

    for spec, new in diff.alignment.items():
        if new is not None and new.name == spec.name and type(new) is type(spec):
            add(changes.mapped, spec, [])
    for spec in diff.added:
        add(changes.added, spec, [])
    for spec in diff.removed:
        add(changes.removed, spec, [])
    for spec, what in diff.changed.items():
        new = diff.alignment.get(spec)
        readable = describe(_refine(spec, new, what))
        if new is not None and new.name != spec.name:
            readable = ["id", *readable]
        if readable:
            add(changes.changed, spec, readable, new)


def spec_changes(registry: Any, old: tuple[Any, dict[str, Any]], new: tuple[Any, dict[str, Any]]) -> SpecChanges:
    """`old` and `new` are (process spec, {name: sub-process spec})."""
    changes = SpecChanges()
    _collect(changes, old[0].name, SpecDiff(registry, old[0], new[0]))
    dep_diffs, added = diff_dependencies(registry, old[1], new[1])
    for name, diff in sorted(dep_diffs.items()):
        if diff is None:
            changes.removed.append(ElementChange(name, name, "process"))
        else:
            _collect(changes, name, diff)
    for name in sorted(added):
        changes.added.append(ElementChange(name, name, "process"))
    return changes


# -- re-basing one running workflow -----------------------------------------------------------------

@dataclass
class Rebase:
    """The outcome for one workflow: `refusals` empty means it now runs on the new version."""

    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refusals


class RebaseError(Exception):
    """The workflow could not be re-based after all; the caller discards it."""


@dataclass
class _Part:
    """One (sub)workflow of the instance with its old and new spec."""

    workflow: Any
    new_spec: Any | None
    diff: SpecDiff | None
    task_diff: WorkflowDiff | None
    parent_task: Any | None = None
    drop: bool = False  # a finished sub-process whose process no longer exists: leaves the state


def _parts(wf: Any, new_spec: Any, new_deps: dict[str, Any], registry: Any) -> list[_Part]:
    top_diff = SpecDiff(registry, wf.spec, new_spec)
    parts = [_Part(wf, new_spec, top_diff, WorkflowDiff(wf, top_diff))]
    for task_id, sub in wf.subprocesses.items():
        parent = wf.get_task_from_id(task_id)
        target = new_deps.get(sub.spec.name)
        diff = SpecDiff(registry, sub.spec, target) if target is not None else None
        parts.append(_Part(sub, target, diff, WorkflowDiff(sub, diff) if diff else None, parent))
    return parts


def _target(part: _Part, spec: Any, same_id: bool = False) -> Any | None:
    """The new spec a task of this part moves to: aligned by SpecDiff and of the same kind. Active tasks
    (`same_id`) only move to the element with their own id, as in Camunda's equal-activity mapping;
    finished ones may follow SpecDiff's structural alignment to a renamed element."""
    if part.diff is None:
        return None
    new = part.diff.alignment.get(spec)
    if new is None or (new.name != spec.name and (same_id or type(new) is not type(spec))):
        return None
    return new


def _is_join(spec: Any) -> bool:
    return isinstance(spec, Join) and len(spec.inputs) > 1


def _open_splits(task: Any) -> Iterator[Any]:
    """Completed parallel/inclusive splits whose branches `task` is still inside (walking up the
    tree: each completed join closes one region)."""
    depth = 0
    current = task.parent
    while current is not None:
        spec = current.task_spec
        if current.state == TaskState.COMPLETED and isinstance(spec, ParallelGateway | InclusiveGateway):
            if len(spec.inputs) > 1:
                depth += 1
            if len(spec.outputs) > 1:
                if depth == 0:
                    yield current
                else:
                    depth -= 1
        current = current.parent


def _boundary_main(task: Any) -> Any | None:
    """The task a boundary event task is attached to (its sibling under the boundary split)."""
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return None
    return next((c for c in parent.children if not isinstance(c.task_spec, BoundaryEvent)), None)


def _check(parts: list[_Part], target: str, result: Rebase) -> None:
    by_workflow = {id(p.workflow): p for p in parts}
    for part in parts:
        active = filter_tasks(list(part.workflow.tasks.values()), state=ACTIVE)
        where = "" if part.parent_task is None else f" (in '{element_label(part.parent_task.task_spec)}')"
        if part.new_spec is None:
            if active and not part.workflow.completed:
                result.refusals.append(f"the sub-process '{process_label(part.workflow.spec.name)}'{where} is "
                                       f"running but does not exist in {target}")
            part.drop = True
            continue
        if part.parent_task is not None:
            parent_part = by_workflow.get(id(part.parent_task.workflow))
            parent_target = None
            if parent_part is not None and not parent_part.drop:
                parent_target = _target(parent_part, part.parent_task.task_spec, part.parent_task.has_state(ACTIVE))
            called = getattr(parent_target, "spec", None)
            if parent_target is None or called != process_label(part.workflow.spec.name):
                if active and not part.workflow.completed:
                    result.refusals.append(f"the sub-process '{process_label(part.workflow.spec.name)}'{where} is "
                                           f"running but is not called from the same element in {target}")
                part.drop = True
                continue
        for task in active:
            _check_task(part, task, target, where, result)
        assert part.task_diff is not None
        gone = sorted({element_label(t.task_spec) for t in filter_tasks(part.task_diff.removed, state=TaskState.COMPLETED)
                       if _public(t.task_spec)})
        if gone:
            result.notes.append(f"completed steps of removed elements leave the task tree{where}: {', '.join(gone)}")


def _check_task(part: _Part, task: Any, target: str, where: str, result: Rebase) -> None:
    spec = task.task_spec
    label = element_label(spec)
    if _public(spec):
        result.active.append(label)
    assert part.diff is not None
    new = part.diff.alignment.get(spec)
    if isinstance(spec, BoundaryEvent) and (new is None or new.name != spec.name):
        main = _boundary_main(task)
        if main is not None and main.has_state(ACTIVE) and _target(part, main.task_spec, True) is not None:
            result.notes.append(f"boundary event '{label}' on '{element_label(main.task_spec)}' was removed: "
                                f"it stops waiting")
            return
    if new is None:
        result.refusals.append(f"active element '{label}'{where} does not exist in {target}")
        return
    if new.name != spec.name:
        result.refusals.append(f"active element '{label}'{where} has no element with the same id in {target} "
                               f"(the nearest match is '{element_label(new)}')")
        return
    changed = _refine(spec, new, part.diff.comparisons.get(spec) or [])
    if "typename" in changed:
        result.refusals.append(f"active element '{label}'{where} changed type in {target} "
                               f"({_type(spec)} to {_type(new)})")
        return
    not_run_yet = task.state == TaskState.ERROR or (task.state == TaskState.READY and not spec.manual)
    blocking = [] if not_run_yet else [a for a in changed if a not in REFRESHED]
    if not not_run_yet and "inputs" in changed and _is_join(spec):
        blocking.append("inputs")
    if blocking:
        result.refusals.append(f"active element '{label}'{where} changed in {target}: "
                               f"{', '.join(describe(blocking))}")
        return
    for split in _open_splits(task):
        split_changes = part.diff.comparisons.get(split.task_spec) or []
        if "outputs" in split_changes or _target(part, split.task_spec) is None:
            result.refusals.append(f"active element '{label}'{where} is inside the branches of gateway "
                                   f"'{element_label(split.task_spec)}', whose branches changed in {target}")
            return
    shown = describe([a for a in changed if a not in ("inputs", "outputs")])
    if shown and _public(spec) and not spec.manual:  # open user tasks are reported with their task row
        result.notes.append(f"'{label}'{where}: {', '.join(shown)} from {target}")
    for boundary in [] if isinstance(spec, BoundaryEvent) else _boundary_specs(new):
        if not any(c.task_spec.name == boundary.name for c in _siblings(task)):
            result.notes.append(f"boundary event '{element_label(boundary)}' on '{label}' was added: it starts "
                                f"waiting now")


def _boundary_specs(new_spec: Any) -> list[Any]:
    split = next((i for i in new_spec.inputs if isinstance(i, BoundaryEventSplit)), None)
    if split is None:
        return []
    return [o for o in split.outputs if isinstance(o, BoundaryEvent)]


def _siblings(task: Any) -> list[Any]:
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return []
    return [c for c in parent.children if c is not task]


def rebase(wf: Any, new_spec: Any, new_deps: dict[str, Any], registry: Any, target: str = "the new version",
           apply: bool = True) -> Rebase:
    """Check whether `wf` can run on `new_spec` (with sub-process specs `new_deps`, keyed by the name each
    running sub-workflow's spec has now: a called process may move to another version) and, when it can and
    `apply` is true, re-base it in place. Raises RebaseError when re-basing fails half-way (the
    workflow object must then be discarded)."""
    result = Rebase()
    try:
        parts = _parts(wf, new_spec, new_deps, registry)
        _check(parts, target, result)
    except RecursionError:  # SpecDiff walks the flows recursively
        result.refusals.append(f"the process is too deeply nested to compare with {target}")
        return result
    result.active = sorted(set(result.active))
    if result.ok and apply:
        try:
            _apply(wf, parts, new_spec, new_deps)
        except RebaseError:
            raise
        except Exception as exc:  # SpiffWorkflow internals: never half a migration
            raise RebaseError(f"{exc.__class__.__name__}: {exc}") from exc
    return result


# -- applying ---------------------------------------------------------------------------------------

def _apply(wf: Any, parts: list[_Part], new_spec: Any, new_deps: dict[str, Any]) -> None:
    for part in parts:
        if part.drop and part.parent_task is not None and part.parent_task.id in wf.subprocesses:
            wf.delete_subprocess(part.parent_task)
    live = [p for p in parts if not p.drop]
    removed: dict[int, list[Any]] = {}
    for part in live:
        removed[id(part.workflow)] = _swap_specs(part)
    # Keyed by the names the specs run under (a called process keeps '<key>@<definition id>').
    wf.subprocess_specs = {spec.name: spec for spec in new_deps.values()}
    for part in live:
        _drop_predictions(part.workflow)
        _drop_removed(wf, part.workflow, removed[id(part.workflow)])
    for part in live:
        _graft_boundary_events(part.workflow)
        _predict(part.workflow)
        _verify(part.workflow)
    if wf.last_task is not None and wf.last_task.id not in wf.tasks:
        wf.last_task = None
    objects = wf.data.setdefault("data_objects", {})
    for name in new_spec.data_objects:
        objects.setdefault(name, None)


def _swap_specs(part: _Part) -> list[Any]:
    """Point the workflow and its tasks at the new specs; return the tasks without a counterpart."""
    wf = part.workflow
    without = []
    for task in list(wf.tasks.values()):
        new = _target(part, task.task_spec, same_id=task.has_state(ACTIVE))
        if new is None:
            without.append(task)
        else:
            task.task_spec = new
    wf.spec = part.new_spec
    return without


def _kept(task: Any) -> bool:
    """Not a prediction: a task that is or was running, one created on purpose (multi-instance items,
    triggered starts), or a pending task right after a finished one."""
    if not task.has_state(PREDICTED) or task.triggered:
        return True
    parent = task.parent
    return task.state == TaskState.FUTURE and parent is not None and parent.has_state(TaskState.FINISHED_MASK)


def _drop_predictions(wf: Any) -> None:
    """Remove every predicted branch; `_predict` builds them again from the new spec."""
    for task in list(wf.tasks.values()):
        if task.id in wf.tasks and _kept(task):
            for child in task.children:
                if not _kept(child):
                    wf._remove_task(child.id)


def _drop_removed(top: Any, wf: Any, without: list[Any]) -> None:
    for task in without:
        if task.id not in wf.tasks:
            continue
        if task.has_state(TaskState.FINISHED_MASK) and not task.has_state(TaskState.ERROR):
            _splice(top, wf, task)
        elif isinstance(task.task_spec, BoundaryEvent) and task.state == TaskState.WAITING:
            top.event_manager.remove_task(task)
            wf._remove_task(task.id)
        elif task.has_state(PREDICTED):
            wf._remove_task(task.id)
        else:
            raise RebaseError(f"task '{element_label(task.task_spec)}' ({TaskState.get_name(task.state)}) has no "
                              f"counterpart in the new version")


def _splice(top: Any, wf: Any, task: Any) -> None:
    """Take a finished task out of the tree, its children taking its place under its parent."""
    if task.id in top.subprocesses:
        top.delete_subprocess(task)
    parent = task.parent
    if parent is None:
        raise RebaseError(f"the root task '{task.task_spec.name}' has no counterpart in the new version")
    index = parent._children.index(task.id)
    parent._children[index:index + 1] = list(task._children)
    for child in task.children:
        child._parent = parent.id
    del wf.tasks[task.id]


def _graft_boundary_events(wf: Any) -> None:
    """Active tasks whose element gained boundary events in the new version get them now."""
    for task in filter_tasks(list(wf.tasks.values()), state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
        boundaries = _boundary_specs(task.task_spec)
        if not boundaries or isinstance(task.task_spec, BoundaryEvent):
            continue
        split_spec = boundaries[0].inputs[0]
        split = task.parent
        if split is None:
            continue
        if split.task_spec is not split_spec:
            split = _insert_split(wf, task, split_spec)
        present = {c.task_spec.name for c in split.children}
        for spec in boundaries:
            if spec.name not in present:
                child = split._add_child(spec, TaskState.WAITING)
                spec._update(child)


def _insert_split(wf: Any, task: Any, split_spec: Any) -> Any:
    from SpiffWorkflow.task import Task

    parent = task.parent
    index = parent._children.index(task.id)
    split = Task(wf, split_spec, parent, state=TaskState.COMPLETED)  # appended to parent's children
    parent._children.pop()
    parent._children[index] = split.id
    split.data = deepcopy(task.data)
    split.thread_id = task.thread_id
    split._children = [task.id]
    task._parent = split.id
    return split


def _predict(wf: Any) -> None:
    for task in list(wf.tasks.values()):
        if task.id not in wf.tasks:
            continue
        if task.has_state(TaskState.DEFINITE_MASK):
            task.task_spec._predict(task, mask=TaskState.NOT_FINISHED_MASK)
        elif task.state == TaskState.ERROR:
            # Predicted as if ready: a retried step continues along the new version's flows.
            task._state = TaskState.READY
            try:
                task.task_spec._predict(task, mask=TaskState.NOT_FINISHED_MASK)
            finally:
                task._state = TaskState.ERROR


def _verify(wf: Any) -> None:
    for task in wf.tasks.values():
        if wf.spec.task_specs.get(task.task_spec.name) is not task.task_spec:
            raise RebaseError(f"task '{element_label(task.task_spec)}' ({TaskState.get_name(task.state)}) has no "
                              f"counterpart in the new version")
        if task._parent is not None and task._parent not in wf.tasks:
            raise RebaseError(f"task '{element_label(task.task_spec)}' lost its place in the task tree")
