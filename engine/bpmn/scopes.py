"""Process variables across parallel paths, as Camunda 7 has them.

SpiffWorkflow keeps a copy of the variables on every task (token): a task starts with a copy of
its predecessor's data, and a join deep-merges the copies of the branches that arrive. A value
one branch wrote was therefore lost when another branch, still carrying the old value, reached a
join or an end later (inclusive and parallel joins, non-interrupting boundary paths), and the
deep merge could even mangle lists. Camunda has one set of variables per scope: whatever a path
writes is visible to the process afterwards, and the last writer wins.

The mechanism, the smallest one that covers joins, ends and boundary paths alike:

1. A *scope* is a process instance, a called process instance or one instance of a
   multi-instance activity, together with the embedded (not multi-instance) sub-processes that
   run inside it. A scope keeps its current variables in a store: the internal data of the
   first task of its root workflow, so the store is saved and reloaded with the instance.
2. When a task of a scope completes, the variables it wrote (its data compared with the store;
   deletions only for scripts) go into the store and into every other live token of the scope
   (ready, waiting, started and failed tasks of the scope's workflows). Every live token thus
   holds the scope's current variables, and a task that becomes ready later inherits them.
3. A joining gateway (parallel, inclusive) takes the store instead of merging stale branch copies.
4. An embedded sub-process (and an event sub-process, event_specs.AlmenEventSubprocess) shares the
   scope of the activity it runs in, so it reads and writes the process variables directly, as in Camunda. A multi-instance instance is a scope of its own: it
   starts with a copy of the variables plus its locals (element variable, loopCounter, nrOf*) and
   when it ends, what it wrote (not its locals) is written back (multi_instance.py). A called
   process is another process instance: only camunda:in / camunda:out mappings cross
   (subprocesses.py).

The data of completed tasks (and of the End task a join fed) is history; consumers of "the
variables" read the store (`scope_variables`).
"""

from __future__ import annotations

from collections import deque
from copy import deepcopy
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnSubWorkflowConverter
from SpiffWorkflow.bpmn.specs.defaults import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptEngineTask
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.util.task import TaskState

LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
STORE = "variables"  # key of the store in the internal data of a scope root's first task


class SharedScope:
    """Marker for sub-process task specs whose sub-workflow shares the scope it runs in."""


def is_instance(task: Any) -> bool:
    """Whether the task is one instance of a multi-instance activity (a child of its body)."""
    parent = task.parent
    return (parent is not None and isinstance(parent.task_spec, MultiInstanceTask)
            and task.task_spec.name == parent.task_spec.task_spec)


def shares_scope(task: Any) -> bool:
    """Whether the sub-workflow started by `task` runs in the scope of the task's workflow."""
    return isinstance(task.task_spec, SharedScope) and not is_instance(task)


def scope_root(workflow: Any) -> Any:
    """The workflow whose first task holds the store of the scope `workflow` belongs to."""
    root = getattr(workflow, "_af_scope_root", None)
    if root is not None:
        return root
    root = workflow
    parent_id = workflow.parent_task_id
    if parent_id is not None:
        parent = workflow.top_workflow.get_task_from_id(parent_id)
        if parent is not None and shares_scope(parent):
            root = scope_root(parent.workflow)
    workflow._af_scope_root = root
    return root


def scope_members(root: Any) -> list[Any]:
    """The workflows of the scope rooted at `root` (the root and its embedded sub-processes)."""
    top = root.top_workflow
    index = getattr(top, "_af_members", None)
    if index is None:
        index = {}
        for wf in [top, *top.subprocesses.values()]:
            index.setdefault(id(scope_root(wf)), []).append(wf)
        top._af_members = index
    return index.get(id(root), [root])


def scope_variables(workflow: Any) -> dict[str, Any] | None:
    """The current variables of the scope `workflow` belongs to (None for state saved before
    scopes existed, until its next task completes)."""
    return scope_root(workflow).task_tree.internal_data.get(STORE)


def _removes_variables(task: Any) -> bool:
    # Only a script can delete a variable; other tasks may carry partial data (an io specification).
    spec = task.task_spec
    return isinstance(spec, ScriptEngineTask) and getattr(spec, "io_specification", None) is None


def record_completion(task: Any) -> None:
    """Write what a completed task changed into its scope and every live token of that scope."""
    spec = task.task_spec
    if is_instance(task) or isinstance(spec, UnstructuredJoin) or spec.name == "End":
        return  # instances write back through their body; joins and ends only carry copies
    root = scope_root(task.workflow)
    internal = root.task_tree.internal_data
    store = internal.get(STORE)
    if store is None:
        store = deepcopy(task.parent.data) if task.parent is not None else {}
        internal[STORE] = store
    changes = {k: v for k, v in task.data.items() if k not in store or store[k] != v}
    removed = [k for k in store if k not in task.data] if _removes_variables(task) else []
    if changes or removed:
        _apply(root, changes, removed, skip=task)


def set_scope_variables(root: Any, values: dict[str, Any]) -> None:
    """Set variables in a scope from outside it (the nrOf* counters of a running instance)."""
    store = root.task_tree.internal_data.get(STORE)
    if store is not None:
        _apply(root, values, [], skip=None)


def _apply(root: Any, changes: dict[str, Any], removed: list[str], skip: Any) -> None:
    store = root.task_tree.internal_data[STORE]
    for key, value in changes.items():
        store[key] = deepcopy(value)
    for key in removed:
        store.pop(key, None)
    for wf in scope_members(root):
        for token in list(wf.tasks.values()):  # not the tree iterator: it stops 1,000 levels deep
            if not token.has_state(LIVE) or token is skip or is_instance(token):
                continue
            for key, value in changes.items():
                token.data[key] = deepcopy(value)
            for key in removed:
                token.data.pop(key, None)


def sync_from_scope(task: Any) -> None:
    """Give a task the scope's current variables (a join, instead of merging branch copies)."""
    store = scope_variables(task.workflow)
    if store is not None:
        task.data = deepcopy(store)


if TYPE_CHECKING:
    # ScopedJoin extends the hooks of the join it is mixed into (SpiffWorkflow, untyped: Any to mypy).
    from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin as _JoinHost
else:
    _JoinHost = object


class ScopedJoin(_JoinHost):
    """Mixin for joining gateways: the joined data is the scope's variables (see module doc)."""

    def _update_hook(self, my_task: Any) -> Any:
        fired = super()._update_hook(my_task)
        if fired:
            sync_from_scope(my_task)
        return fired

    def _run_hook(self, my_task: Any) -> Any:
        result = super()._run_hook(my_task)
        sync_from_scope(my_task)
        return result


class AlmenInclusiveGateway(InclusiveGateway):
    """Inclusive gateway whose join takes the scope's variables before choosing outgoing flows."""

    def _update_hook(self, my_task: Any) -> Any:
        fired = super()._update_hook(my_task)
        if fired:
            sync_from_scope(my_task)
        return fired

    def _run_hook(self, my_task: Any) -> bool:
        UnstructuredJoin._run_hook(self, my_task)
        sync_from_scope(my_task)
        matches, defaults = self._get_matching_outputs(my_task)
        if len(matches + defaults) == 0:
            raise WorkflowTaskException("No conditions satisfied on gateway", task=my_task)
        my_task._sync_children(matches or defaults, TaskState.FUTURE)
        for child in my_task.children:
            child.task_spec._predict(child, mask=TaskState.FUTURE | TaskState.PREDICTED_MASK)
        return True


class AlmenWorkflow(BpmnWorkflow):
    """The top workflow of an instance: records completions into scopes; knows how to resolve
    called processes (`call_resolver`, set by the codec, never serialised)."""

    call_resolver: Any = None

    def _task_completed_notify(self, task: Any) -> None:
        record_completion(task)
        super()._task_completed_notify(task)

    def update_waiting_tasks(self) -> None:
        # SpiffWorkflow walks the whole task tree after every completion to find the waiting tasks;
        # scanning the task dicts is the same set (no depth limit) at a fraction of the cost, which
        # keeps a multi-instance activity of thousands of instances linear.
        waiting = [t for t in self.tasks.values() if t.state == TaskState.WAITING]
        for subprocess in self.subprocesses.values():
            if not subprocess.completed:
                waiting.extend(t for t in subprocess.tasks.values() if t.state == TaskState.WAITING)
        for task in waiting:
            if task.state == TaskState.WAITING:
                task.task_spec._update(task)

    def create_subprocess(self, my_task: Any, spec_name: str) -> Any:
        subprocess = AlmenSubWorkflow(self.subprocess_specs[spec_name], parent_task_id=my_task.id,
                                      top_workflow=self)
        self.subprocesses[my_task.id] = subprocess
        index = getattr(self, "_af_members", None)
        if index is not None:
            root = scope_root(my_task.workflow) if shares_scope(my_task) else subprocess
            subprocess._af_scope_root = root
            index.setdefault(id(root), []).append(subprocess)
        return subprocess

    def delete_subprocess(self, my_task: Any) -> Any:
        self._af_members = None
        return super().delete_subprocess(my_task)

    def _do_engine_steps(self, will_complete_task: Any = None, did_complete_task: Any = None) -> bool:
        # SpiffWorkflow's loop, except that (1) a task cancelled while the loop ran (a multi-instance
        # whose completion condition was met cancels its other instances) is not run any more, (2) a
        # multi-instance instance is prepared just before it runs, and (3) the next instance of a
        # sequential multi-instance runs in the same pass instead of after another walk of the tree.
        def update_workflow(wf: Any) -> int:
            count = 0
            ready = deque(wf.get_tasks(state=TaskState.READY))
            while ready:
                task = ready.popleft()
                if task.state != TaskState.READY or task.task_spec.manual:
                    continue
                body = task.parent.task_spec if is_instance(task) else None
                if body is not None and hasattr(body, "prepare_instance"):
                    body.prepare_instance(task)
                if will_complete_task is not None:
                    will_complete_task(task)
                task.run()
                count += 1
                if did_complete_task is not None:
                    did_complete_task(task)
                if body is not None and hasattr(body, "next_instance"):
                    following = body.next_instance(task)
                    if following is not None:
                        ready.append(following)
            return count

        active = self.get_active_subprocesses()
        for subprocess in sorted(active, key=lambda v: v.depth, reverse=True):
            count = None
            while count is None or count > 0:
                count = update_workflow(subprocess)
            if subprocess.parent_task_id is not None:
                task = self.get_task_from_id(subprocess.parent_task_id)
                task.task_spec._update(task)
        count = update_workflow(self)
        return count > 0 or len(self.get_active_subprocesses()) > len(active)


class AlmenSubWorkflow(BpmnSubWorkflow):
    def _task_completed_notify(self, task: Any) -> None:
        record_completion(task)
        super()._task_completed_notify(task)


class AlmenSubWorkflowConverter(BpmnSubWorkflowConverter):
    """Restores a sub-workflow from the spec it ran with (a called process version is named
    '<key>@<definition id>'), not from the name on the task spec."""

    def from_dict(self, dct: dict, task: Any, top_workflow: Any) -> Any:
        spec = top_workflow.subprocess_specs.get(dct.get("spec")) or \
            top_workflow.subprocess_specs.get(task.task_spec.spec)
        subprocess = self.target_class(spec, task.id, top_workflow, deserializing=True)
        subprocess.tasks = self.mapping_from_dict(dct["tasks"], _uuid, workflow=subprocess)
        subprocess.task_tree = subprocess.tasks.get(_uuid(dct["root"]))
        self.set_default_attributes(subprocess, dct)
        return subprocess


def _uuid(value: str) -> Any:
    from uuid import UUID

    return UUID(value)
