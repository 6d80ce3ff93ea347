"""Multi-instance activities with Camunda 7 semantics.

SpiffWorkflow's Camunda multi-instance classes rewrite their own task spec when they start,
which is unsafe once specs are shared by instances; its BPMN classes know neither
camunda:collection nor the nrOf* variables. These classes read their configuration and keep
all run-time state in the body task's internal data; the spec is never changed.

Semantics (docs.camunda.org, "Task Markers"):
- The number of instances is computed once, when the activity starts: loopCardinality (an
  expression giving a non-negative integer) or the size of camunda:collection (a list variable,
  or an expression giving a list; bpmn:loopDataInputRef names a variable too). With both, the
  cardinality counts and the element variable takes the collection's item at each index. More
  instances than Limits.max_multi_instance is an incident before any instance is created.
- Each instance has local variables: loopCounter (0, 1, ...), the camunda:elementVariable
  (bpmn:inputDataItem) holding its item, and nrOfInstances, nrOfActiveInstances,
  nrOfCompletedInstances (kept current while it waits or just before it runs).
- An instance is a scope of its own (scopes.py). One that completes as it runs (a script, a
  business rule task) reads the variables as they are when it runs, what earlier instances wrote
  included, as Camunda runs such instances one after the other. One that waits (a user task, a
  sub-process, a call activity) works on the copy it started with. When an instance completes,
  the variables it wrote (not its locals) are written to the activity, and so to the process when
  the activity completes; the last instance to complete wins. AlmenFlow also writes
  the element variable's final value back into the collection variable at the instance's index
  (the process library collects results that way); the collection is not otherwise changed.
- The completionCondition is evaluated every time an instance completes, with that instance's
  variables and the current nrOf* counts; when true the remaining instances are cancelled and
  the activity completes. A condition that fails is an incident on the activity; retry
  evaluates it again.
- Parallel: all instances start at once. Sequential: one after the other.
"""

from __future__ import annotations

import hashlib
import json
import re
from copy import deepcopy
from typing import Any, NoReturn, Protocol
from uuid import UUID

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.serializer.default.task_spec import BpmnTaskSpecConverter
from SpiffWorkflow.bpmn.specs.data_spec import TaskDataReference
from SpiffWorkflow.bpmn.specs.mixins import BpmnSpecMixin
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.util.task import TaskState

from ..expressions import ExpressionError, to_python
from ..limits import DEFAULT_LIMITS
from .scopes import SharedScope, is_instance, scope_root, set_scope_variables

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
STATE = "multi_instance"  # key in the body task's internal data
COUNTERS = ("nrOfInstances", "nrOfActiveInstances", "nrOfCompletedInstances")
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


def _fingerprint(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _fingerprints(data: dict[str, Any]) -> dict[str, str]:
    return {key: _fingerprint(value) for key, value in data.items()}


class CamundaMultiInstance(MultiInstanceTask, BpmnSpecMixin):
    """The body of a multi-instance activity; its children are the instances (see module doc)."""

    sequential = False

    def __init__(self, wf_spec: Any, bpmn_id: str, task_spec: str, cardinality: str | None = None,
                 collection: str | None = None, element_variable: str | None = None,
                 condition: str | None = None, **kwargs: Any) -> None:
        for unused in ("data_input", "data_output", "input_item", "output_item"):
            kwargs.pop(unused, None)
        # input_item names the element variable for readers of SpiffWorkflow's interface
        # (the task list labels an instance's tasks with its item).
        item = TaskDataReference(element_variable) if element_variable else None
        super().__init__(wf_spec, bpmn_id, task_spec, cardinality=cardinality, input_item=item,
                         condition=condition, **kwargs)
        self.collection = collection
        self.element_variable = element_variable

    # -- lifecycle -------------------------------------------------------------------------------
    def _run_hook(self, my_task: Any) -> Any:
        state = my_task.internal_data.get(STATE)
        if state is None:
            return self._activate(my_task)
        if not state.get("done"):
            self._settle(my_task, state)
        return True if state.get("done") else None

    def _activate(self, my_task: Any) -> Any:
        count, items = self._resolve_instances(my_task)
        state: dict[str, Any] = {"total": count, "completed": 0, "created": 0, "pending": [],
                                 "base": _fingerprints(my_task.data)}
        if self.sequential and items is not None:
            state["items"] = items
        my_task.internal_data[STATE] = state
        if count == 0:
            state["done"] = True
            return True
        for index in range(1 if self.sequential else count):
            self._create(my_task, state, index, items)
        return None

    def merge_child(self, workflow: Any, child: Any) -> None:
        """An instance completed (connected to the instance spec's completed event)."""
        my_task = child.parent
        state = my_task.internal_data.get(STATE) if my_task is not None else None
        if state is None or state.get("done") or not is_instance(child):
            return
        self._write_back(my_task, child, state)
        state["completed"] += 1
        state["pending"].append([str(child.id), state["completed"]])
        try:
            self._settle(my_task, state)
        except Exception:
            # Reported by the body's next run (an incident naming the activity), never from here:
            # this runs inside whatever completed the instance (a user submitting a form).
            self._wake(my_task)

    def _settle(self, my_task: Any, state: dict[str, Any]) -> None:
        """Evaluate the completion condition for the instances that completed, then finish,
        start the next sequential instance, or refresh the counters of waiting instances."""
        while state["pending"]:
            child_id, completed = state["pending"][0]
            child = my_task.workflow.tasks.get(UUID(child_id))
            if self.condition and child is not None and self._condition_met(my_task, child, completed, state):
                state["pending"] = []
                for other in list(my_task.children):
                    if is_instance(other) and not other.has_state(TaskState.FINISHED_MASK):
                        other.cancel()
                state["done"] = True
                self._wake(my_task)
                return
            state["pending"].pop(0)
        if state["completed"] >= state["total"]:
            state["done"] = True
            self._wake(my_task)
        elif self.sequential:
            if state["created"] == state["completed"]:  # the one running instance has completed
                self._create(my_task, state, state["created"], state.get("items"))
        else:
            self._refresh_waiting(my_task, state)

    def _on_cancel(self, my_task: Any) -> None:
        # Cancelling the body (an interrupting boundary event) drops its unfinished instances from
        # the tree without cancelling them; the sub-workflows of instances must end too.
        state = my_task.internal_data.get(STATE) or {}
        top = my_task.workflow.top_workflow
        for child_id in state.get("waiting", []):
            subprocess = top.subprocesses.get(UUID(child_id))
            if subprocess is not None and not subprocess.completed:
                top.cancel(subprocess)
        super()._on_cancel(my_task)

    @staticmethod
    def _wake(my_task: Any) -> None:
        if my_task.state == TaskState.STARTED:
            my_task._set_state(TaskState.READY)

    # -- instances -------------------------------------------------------------------------------
    def _resolve_instances(self, my_task: Any) -> tuple[int, list[Any] | None]:
        engine = my_task.workflow.script_engine
        limit = getattr(engine, "limits", DEFAULT_LIMITS).max_multi_instance
        items = None
        if self.collection:
            if self.collection.isidentifier():
                if self.collection not in my_task.data:
                    raise WorkflowTaskException(f"the collection variable '{self.collection}' is not set", task=my_task)
                value = my_task.data[self.collection]
            else:
                value = engine.evaluate(my_task, self.collection)
            if not isinstance(value, list | tuple):
                raise WorkflowTaskException(
                    f"camunda:collection '{self.collection}' must be a list, not {type(value).__name__}", task=my_task)
            items = list(value)
        if self.cardinality is not None:
            count = self._cardinality(my_task, engine.evaluate(my_task, self.cardinality))
            if items is not None and count > len(items):
                raise WorkflowTaskException(
                    f"loopCardinality {count} is larger than the collection ({len(items)} items)", task=my_task)
        else:
            count = len(items or [])
        if count > limit:
            raise WorkflowTaskException(
                f"{count} instances exceed the limit of {limit} instances of one multi-instance activity",
                task=my_task)
        return count, items

    def _cardinality(self, my_task: Any, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and _INTEGER.match(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise WorkflowTaskException(
                f"loopCardinality '{self.cardinality}' must give a whole number of instances (0 or more), "
                f"not {value!r}"[:300], task=my_task)
        return value

    def _create(self, my_task: Any, state: dict[str, Any], index: int, items: list[Any] | None) -> None:
        task_spec = my_task.workflow.spec.task_specs[self.task_spec]
        if not task_spec.completed_event.is_connected(self.merge_child):
            task_spec.completed_event.connect(self.merge_child)
        if self.sequential:
            state["base"] = _fingerprints(my_task.data)
        child = my_task._add_child(task_spec, TaskState.WAITING)
        child.triggered = True
        child.internal_data["key_or_index"] = index
        state["created"] += 1
        state["last"] = str(child.id)
        if task_spec.manual or isinstance(task_spec, SubWorkflowTask):
            state.setdefault("waiting", []).append(str(child.id))  # kept current by _refresh_waiting
        child.task_spec._update(child)
        # After _update: inheriting the body's data must not replace the locals.
        local = {"loopCounter": index, **self._counters(state, state["completed"])}
        if self.element_variable and items is not None:
            local[self.element_variable] = deepcopy(items[index])
        child.data.update(local)

    def _counters(self, state: dict[str, Any], completed: int) -> dict[str, int]:
        total = state["total"]
        active = 1 if self.sequential else max(total - completed, 0)
        return {"nrOfInstances": total, "nrOfActiveInstances": active, "nrOfCompletedInstances": completed}

    def _condition_met(self, my_task: Any, child: Any, completed: int, state: dict[str, Any]) -> bool:
        # As on the instance's execution in Camunda: the process variables (what this instance
        # wrote is in them now), the instance's locals and the current counters.
        local = {key: child.data[key] for key in self._locals() if key in child.data}
        child.data = deepcopy(my_task.data)
        child.data.update(local)
        child.data.update(self._counters(state, completed))
        return bool(my_task.workflow.script_engine.evaluate(child, self.condition))

    def _locals(self) -> set[str]:
        return {"loopCounter", *COUNTERS} | ({self.element_variable} if self.element_variable else set())

    def _write_back(self, my_task: Any, child: Any, state: dict[str, Any]) -> None:
        """Write what the instance changed (not its locals) to the body, and its element variable
        into the collection. An instance prepared just before it ran is compared with the body's
        current variables; one that waited, with the variables it started with (fingerprints)."""
        fresh = child.internal_data.pop("fresh", False)
        base = state["base"]
        local = self._locals()
        for key, value in child.data.items():
            if key in local:
                continue
            if fresh:
                changed = key not in my_task.data or my_task.data[key] != value
            else:
                changed = _fingerprint(value) != base.get(key)
            if changed:
                my_task.data[key] = deepcopy(value)
        element = self.element_variable
        if element and self.collection and self.collection.isidentifier() and element in child.data:
            index = child.internal_data.get("key_or_index")
            target = my_task.data.get(self.collection)
            if isinstance(target, list) and isinstance(index, int) and 0 <= index < len(target) \
                    and target[index] != child.data[element]:
                target = list(target)
                target[index] = deepcopy(child.data[element])
                my_task.data[self.collection] = target

    def _refresh_waiting(self, my_task: Any, state: dict[str, Any]) -> None:
        """Instances waiting for people, timers or a sub-process see the current counters; ready
        automatic ones are refreshed when they run (prepare_instance)."""
        counters = self._counters(state, state["completed"])
        top = my_task.workflow.top_workflow
        still_waiting = []
        for child_id in state.get("waiting", []):
            child = my_task.workflow.tasks.get(UUID(child_id))
            if child is None or child.has_state(TaskState.FINISHED_MASK):
                continue
            still_waiting.append(child_id)
            child.data.update(counters)
            subprocess = top.subprocesses.get(child.id)
            if subprocess is not None and isinstance(child.task_spec, SharedScope):
                # An embedded sub-process instance sees them; a called process is another instance.
                set_scope_variables(scope_root(subprocess), counters)
        state["waiting"] = still_waiting

    def next_instance(self, child: Any) -> Any:
        """The instance a sequential body started when `child` completed, if it is ready."""
        state = child.parent.internal_data.get(STATE) if child.parent is not None else None
        if not self.sequential or state is None or state.get("done") or not state.get("last"):
            return None
        following = child.workflow.tasks.get(UUID(state["last"]))
        return following if following is not None and following.state == TaskState.READY else None

    def prepare_instance(self, child: Any) -> None:
        """Called just before the engine runs a ready instance. An instance that completes when it
        runs (a script, a business rule task) reads the variables as they are now, what earlier
        instances wrote included, as Camunda's synchronous instances do; every instance gets the
        current counters."""
        state = child.parent.internal_data.get(STATE)
        if state is None or state.get("done"):
            return
        if not isinstance(child.task_spec, SubWorkflowTask):
            # Its locals and anything set on it alone (data given with a retry) stay.
            base, local = state["base"], self._locals()
            own = {key: value for key, value in child.data.items()
                   if key in local or _fingerprint(value) != base.get(key)}
            child.data = deepcopy(child.parent.data)
            child.data.update(own)
            child.internal_data["fresh"] = True
        child.data.update(self._counters(state, state["completed"]))


class ParallelMultiInstance(CamundaMultiInstance):
    sequential = False


class SequentialMultiInstance(CamundaMultiInstance):
    sequential = True


# -- parsing -------------------------------------------------------------------------------------

class _TaskParser(Protocol):
    """What CamundaMultiInstanceParser uses of SpiffWorkflow's TaskParser (untyped), which it is mixed into."""

    spec: Any
    task: Any

    def xpath(self, xpath: str) -> list[Any]: ...

    def attribute(self, attribute: str, namespace: str | None = None, node: Any = None) -> str | None: ...

    def raise_validation_exception(self, message: str) -> NoReturn: ...

    def _copy_task_attrs(self, original: Any, loop_characteristics: Any = None) -> None: ...


class CamundaMultiInstanceParser:
    """Mixin for every task parser: multiInstanceLoopCharacteristics the Camunda 7 way."""

    def _add_multiinstance_task(self: _TaskParser, loop_characteristics: Any) -> None:
        prefix = "./bpmn:multiInstanceLoopCharacteristics"

        def text(path: str) -> str | None:
            found = self.xpath(f"{prefix}/{path}")
            return (found[0].text or "").strip() or None if found else None

        if self.xpath(f"{prefix}/bpmn:loopDataOutputRef") or self.xpath(f"{prefix}/bpmn:outputDataItem"):
            self.raise_validation_exception("multi-instance output (loopDataOutputRef, outputDataItem) is not "
                                            "supported by Camunda 7")
        cardinality = text("bpmn:loopCardinality")
        collection = self.attribute("collection", "camunda", loop_characteristics) or text("bpmn:loopDataInputRef")
        element = self.attribute("elementVariable", "camunda", loop_characteristics)
        if element is None:
            item = self.xpath(f"{prefix}/bpmn:inputDataItem")
            element = (item[0].get("name") or item[0].get("id")) if item else None
        if cardinality is None and not collection:
            self.raise_validation_exception("a multi-instance activity needs loopCardinality or camunda:collection")
        original = self.spec.task_specs.pop(self.task.name)
        cls = SequentialMultiInstance if loop_characteristics.get("isSequential") == "true" else ParallelMultiInstance
        self.task = cls(self.spec, original.name, "", cardinality=cardinality, collection=collection or None,
                        element_variable=element, condition=text("bpmn:completionCondition"),
                        description="Sequential MultiInstance" if cls.sequential else "Parallel MultiInstance")
        self._copy_task_attrs(original, loop_characteristics)


_WRAPPED: dict[type, type] = {}


def with_multi_instance(parser_class: type) -> type:
    """`parser_class` with Camunda multi-instance parsing (one cached subclass per class)."""
    wrapped = _WRAPPED.get(parser_class)
    if wrapped is None:
        wrapped = type(parser_class.__name__, (CamundaMultiInstanceParser, parser_class), {})
        _WRAPPED[parser_class] = wrapped
    return wrapped


def check_loop_characteristics(el: Any, problem: Any, compile_check: Any) -> None:
    """Deploy-time checks of multiInstanceLoopCharacteristics; translates camunda:collection."""
    attr = f"{{{CAMUNDA_NS}}}collection"
    value = el.get(attr)
    if value is not None:
        value = value.strip()
        if value.isidentifier():
            el.set(attr, value)
        else:
            try:
                python = to_python(value)
            except ExpressionError as exc:
                problem(el, f"camunda:collection '{value}' cannot be translated: {exc}")
                return
            if python.isidentifier() or compile_check(el, python):
                el.set(attr, python)
    element = el.get(f"{{{CAMUNDA_NS}}}elementVariable")
    if element is not None and not (element.isidentifier() and not element.startswith("_")):
        problem(el, f"camunda:elementVariable '{element}' is not a valid variable name")


def check_cardinality_limits(specs: list[Any], limit: int) -> list[tuple[str, str]]:
    """(element id, message) for every literal loopCardinality above `limit` or below 0."""
    found = []
    for spec in specs:
        for ts in spec.task_specs.values():
            if isinstance(ts, CamundaMultiInstance) and ts.cardinality and _INTEGER.match(ts.cardinality):
                count = int(ts.cardinality)
                if count > limit:
                    found.append((ts.bpmn_id, f"loopCardinality {count} exceeds the limit of {limit} instances"))
                elif count < 0:
                    found.append((ts.bpmn_id, f"loopCardinality {count} is negative"))
    return found


# -- serialisation -------------------------------------------------------------------------------

class MultiInstanceConverter(BpmnTaskSpecConverter):
    def to_dict(self, spec: Any) -> dict:
        dct = self.get_default_attributes(spec)
        dct.update(task_spec=spec.task_spec, cardinality=spec.cardinality, collection=spec.collection,
                   element_variable=spec.element_variable, condition=spec.condition)
        return dct

    def from_dict(self, dct: dict) -> Any:
        return self.task_spec_from_dict(dct)


CONVERTERS = {ParallelMultiInstance: MultiInstanceConverter, SequentialMultiInstance: MultiInstanceConverter}
