"""Embedded sub-processes and call activities with Camunda 7 semantics.

Both kinds start their sub-workflow when the activity *runs* (not when it becomes ready), so
anything that fails while starting (the call depth, a called process that is not deployed, a
camunda:in expression) fails the activity itself: an incident naming it, and a retry starts it
again. When the sub-workflow has ended the activity runs once more to take the result (the
camunda:out mappings of a call activity can fail and be retried the same way).

- Call depth: a sub-workflow nested deeper than Limits.max_call_depth (embedded sub-processes
  and called processes both count) is an incident; a process calling itself stops there.
- An embedded sub-process shares the variables of the scope it runs in (scopes.py).
- A call activity starts another process instance: nothing crosses but its camunda:in mappings
  (`variables="all"`, `source`/`sourceExpression` + `target`, `local="true"`: only the
  activity's local variables, i.e. the multi-instance element variable and loopCounter), and at
  the end its camunda:out mappings, evaluated against the called instance's variables. Out
  mappings with local="true" become local variables of the activity, which end with it (there
  are no output parameters to take them further). No mapping: no variables, as in Camunda.
- The called process is resolved when the activity starts (calledElementBinding latest:
  the newest version then; deployment: the version deployed with the caller; version:
  camunda:calledElementVersion). `top_workflow.call_resolver` (engine/calls.py) finds it in
  the database and attaches its specs to the workflow under '<key>@<definition id>'.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.task_parsers import SubprocessParser
from SpiffWorkflow.bpmn.serializer.default.task_spec import SubWorkflowConverter
from SpiffWorkflow.bpmn.specs.defaults import CallActivity, TransactionSubprocess
from SpiffWorkflow.bpmn.specs.mixins import BpmnSpecMixin
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.camunda.parser.task_spec import CamundaTaskParser
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from ..expressions import ExpressionError, to_python
from ..limits import DEFAULT_LIMITS
from .scopes import SharedScope, is_instance, scope_variables

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BINDINGS = ("latest", "deployment", "version")
# camunda:in businessKey="#{execution.processBusinessKey}": a called process runs inside the same
# AlmenFlow instance, so it has the caller's business key already.
_SAME_BUSINESS_KEY = {"#{execution.processBusinessKey}", "${execution.processBusinessKey}"}


class CallResolutionError(Exception):
    """The called process (version) cannot be found."""


def namespace_of(workflow: Any) -> str:
    """'<key>@<id>/' for a workflow running a called process version, '' for the instance's own."""
    name = workflow.spec.name
    return name.split("/", 1)[0] + "/" if "@" in name else ""


class ScopedSubWorkflow(SubWorkflowTask):
    """Starts its sub-workflow when run and takes the result when run again (see module doc)."""

    def _update_hook(self, my_task: Any) -> Any:
        subprocess = my_task.workflow.top_workflow.subprocesses.get(my_task.id)
        if subprocess is None:
            return super(SubWorkflowTask, self)._update_hook(my_task)
        return subprocess.completed

    def _run_hook(self, my_task: Any) -> Any:
        subprocess = my_task.workflow.top_workflow.subprocesses.get(my_task.id)
        if subprocess is None:
            self._check_depth(my_task)
            self.start_workflow(my_task)
            return None
        if not subprocess.completed:
            return None
        self.finish(my_task, subprocess)
        return True

    def _on_subworkflow_completed(self, subworkflow: Any, my_task: Any) -> None:
        if my_task.state == TaskState.STARTED:
            my_task._set_state(TaskState.READY)

    def _check_depth(self, my_task: Any) -> None:
        limits = getattr(my_task.workflow.script_engine, "limits", DEFAULT_LIMITS)
        depth = my_task.workflow.depth + 1
        if depth > limits.max_call_depth:
            raise WorkflowTaskException(
                f"sub-processes and called processes nest {depth} deep here, more than the call depth limit of "
                f"{limits.max_call_depth} (does a process call itself?)", task=my_task)

    def _start(self, my_task: Any, spec_name: str, variables: dict[str, Any]) -> None:
        top = my_task.workflow.top_workflow
        subprocess = top.create_subprocess(my_task, spec_name)
        subprocess.completed_event.connect(self._on_subworkflow_completed, my_task)
        start = subprocess.task_tree
        start.set_data(**variables)
        start.run()

    def finish(self, my_task: Any, subprocess: Any) -> None:
        variables = scope_variables(subprocess)
        my_task.data = deepcopy(variables if variables is not None else subprocess.last_task.data)


class EmbeddedSubWorkflow(ScopedSubWorkflow, SharedScope):
    def start_workflow(self, my_task: Any) -> None:
        name = namespace_of(my_task.workflow) + self.spec
        if name not in my_task.workflow.top_workflow.subprocess_specs:
            raise WorkflowTaskException(f"the sub-process '{self.spec}' was not found", task=my_task)
        self._start(my_task, name, deepcopy(my_task.data))


class AlmenSubProcess(EmbeddedSubWorkflow, BpmnSpecMixin):
    """An embedded bpmn:subProcess."""


class AlmenTransaction(EmbeddedSubWorkflow, TransactionSubprocess):
    """An embedded bpmn:transaction."""


class AlmenCallActivity(ScopedSubWorkflow, CallActivity):
    """A bpmn:callActivity: calls another deployed process (see module doc)."""

    def __init__(self, wf_spec: Any, bpmn_id: str, subworkflow_spec: str, binding: str = "latest",
                 version: int | None = None, in_mappings: list[dict] | None = None,
                 out_mappings: list[dict] | None = None, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, subworkflow_spec, **kwargs)
        self.binding = binding
        self.version = version
        self.in_mappings = in_mappings or []
        self.out_mappings = out_mappings or []

    def start_workflow(self, my_task: Any) -> None:
        top = my_task.workflow.top_workflow
        resolver = getattr(top, "call_resolver", None)
        if resolver is None:
            raise WorkflowTaskException("a called process can only be started by the engine", task=my_task)
        try:
            name = resolver.attach(top, my_task.workflow.spec.name, self.spec, self.binding, self.version)
        except CallResolutionError as exc:
            raise WorkflowTaskException(str(exc), task=my_task) from None
        self._start(my_task, name, self._in_variables(my_task))

    def finish(self, my_task: Any, subprocess: Any) -> None:
        called = scope_variables(subprocess)
        called = deepcopy(called if called is not None else subprocess.last_task.data)
        outputs: dict[str, Any] = {}
        for mapping in self.out_mappings:
            values = self._values(mapping, called, lambda expr: self._evaluate_in(subprocess, my_task, called, expr))
            if not mapping.get("local"):
                outputs.update(values)
        my_task.data.update(outputs)

    # -- mappings --------------------------------------------------------------------------------
    def _in_variables(self, my_task: Any) -> dict[str, Any]:
        variables: dict[str, Any] = {}
        for mapping in self.in_mappings:
            source = self._locals(my_task) if mapping.get("local") else my_task.data
            variables.update(self._values(mapping, source, lambda expr: self._evaluate(my_task, expr, "camunda:in")))
        return deepcopy(variables)

    @staticmethod
    def _values(mapping: dict, source: dict[str, Any], evaluate: Any) -> dict[str, Any]:
        kind = mapping["kind"]
        if kind == "all":
            return dict(source)
        if kind == "source":
            return {mapping["target"]: source.get(mapping["source"])}
        if kind == "expression":
            return {mapping["target"]: evaluate(mapping["expression"])}
        return {}

    @staticmethod
    def _locals(my_task: Any) -> dict[str, Any]:
        """The local variables of the executing activity: those of its multi-instance instance."""
        if not is_instance(my_task):
            return {}
        body = my_task.parent.task_spec
        names = ["loopCounter"] + ([body.element_variable] if getattr(body, "element_variable", None) else [])
        return {name: my_task.data[name] for name in names if name in my_task.data}

    @staticmethod
    def _evaluate(task: Any, expression: str, what: str) -> Any:
        try:
            return task.workflow.script_engine.evaluate(task, expression)
        except SpiffWorkflowException:
            raise
        except Exception as exc:
            raise WorkflowTaskException(f"{what} expression '{expression}' failed: {exc}", task=task) from exc

    @staticmethod
    def _evaluate_in(subprocess: Any, my_task: Any, called: dict[str, Any], expression: str) -> Any:
        """A camunda:out sourceExpression, evaluated against the called instance's variables."""
        end = subprocess.last_task
        end.data = deepcopy(called)
        try:
            return subprocess.script_engine.evaluate(end, expression)
        except Exception as exc:
            message = exc.args[0] if isinstance(exc, SpiffWorkflowException) and exc.args else str(exc)
            raise WorkflowTaskException(f"camunda:out expression '{expression}' failed: {message}",
                                        task=my_task) from None


# -- parsing -------------------------------------------------------------------------------------

class AlmenCallActivityParser(CamundaTaskParser):
    def create_task(self) -> Any:
        called = SubprocessParser.get_call_activity_spec(self)
        return self.spec_class(self.spec, self.bpmn_id, subworkflow_spec=called, **call_options(self.node),
                               **self.bpmn_attributes)


def _camunda(el: Any, name: str) -> str | None:
    return el.get(f"{{{CAMUNDA_NS}}}{name}")


def _mapping_elements(el: Any, direction: str) -> list[Any]:
    return el.xpath(f"./bpmn:extensionElements/camunda:{direction}",
                    namespaces={"bpmn": BPMN_NS, "camunda": CAMUNDA_NS})


def _mapping(m: Any) -> dict[str, Any] | None:
    local = (m.get("local") or "").strip().lower() == "true"
    if m.get("variables") is not None:
        return {"kind": "all", "local": local}
    if m.get("businessKey") is not None:
        return None
    if m.get("sourceExpression") is not None:
        return {"kind": "expression", "expression": m.get("sourceExpression"), "target": m.get("target"),
                "local": local}
    return {"kind": "source", "source": m.get("source"), "target": m.get("target"), "local": local}


def call_options(node: Any) -> dict[str, Any]:
    """The call activity attributes the spec keeps (validated by check_call_activity)."""
    version = _camunda(node, "calledElementVersion")
    return {
        "binding": (_camunda(node, "calledElementBinding") or "latest").strip(),
        "version": int(version) if version and version.strip().isdigit() else None,
        "in_mappings": [m for m in map(_mapping, _mapping_elements(node, "in")) if m is not None],
        "out_mappings": [m for m in map(_mapping, _mapping_elements(node, "out")) if m is not None],
    }


def check_call_activity(el: Any, problem: Any, compile_check: Any) -> None:
    """Deploy-time checks of a bpmn:callActivity element; translates sourceExpression to Python.
    `problem(el, message)` records a refusal; `compile_check(el, source)` compiles an expression."""
    called = (el.get("calledElement") or "").strip()
    if not called:
        problem(el, "the call activity has no calledElement (the id of the process to call)")
    elif "{" in called:
        problem(el, f"calledElement '{called}' must name a process id; expressions are not supported")
    for attr, reason in (("caseRef", "calling a CMMN case is not supported"),
                         ("calledElementTenantId", "AlmenFlow has no tenants"),
                         ("calledElementVersionTag", "calledElementBinding=\"versionTag\" is not supported"),
                         ("variableMappingClass", "variable mapping by a Java class cannot run in AlmenFlow"),
                         ("variableMappingDelegateExpression",
                          "variable mapping by a Java delegate cannot run in AlmenFlow")):
        if _camunda(el, attr) is not None:
            problem(el, f"camunda:{attr}: {reason}")
    binding = (_camunda(el, "calledElementBinding") or "latest").strip()
    version = (_camunda(el, "calledElementVersion") or "").strip()
    if binding not in BINDINGS:
        problem(el, f"calledElementBinding=\"{binding}\" is not supported (use latest, deployment or version)")
    elif binding == "version" and not (version.isdigit() and int(version) > 0):
        problem(el, "calledElementBinding=\"version\" needs camunda:calledElementVersion with a version number"
                    + (f", not '{version}'" if version else ""))
    elif binding != "version" and version:
        problem(el, "camunda:calledElementVersion is only used with calledElementBinding=\"version\"")
    if el.xpath("./bpmn:extensionElements/camunda:inputOutput", namespaces={"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}):
        problem(el, "camunda:inputOutput on a call activity is not supported; use camunda:in / camunda:out")
    for direction in ("in", "out"):
        for m in _mapping_elements(el, direction):
            _check_mapping(el, m, direction, problem, compile_check)


def _check_mapping(el: Any, m: Any, direction: str, problem: Any, compile_check: Any) -> None:
    what = f"camunda:{direction}"
    variables, business_key = m.get("variables"), m.get("businessKey")
    source, expression, target = m.get("source"), m.get("sourceExpression"), m.get("target")
    local = m.get("local")
    if local is not None and local.strip().lower() not in ("true", "false"):
        problem(el, f"{what} local=\"{local}\" must be true or false")
    if variables is not None:
        if variables.strip() != "all":
            problem(el, f"{what} variables=\"{variables}\" is not supported (only variables=\"all\")")
        return
    if business_key is not None:
        if direction == "out":
            problem(el, "camunda:out businessKey: the business key cannot be passed back")
        elif business_key.strip() not in _SAME_BUSINESS_KEY:
            problem(el, f"camunda:in businessKey=\"{business_key}\" is not supported; a called process has the "
                        "caller's business key")
        return
    if (source is None) == (expression is None):
        problem(el, f"{what} needs exactly one of source, sourceExpression or variables=\"all\"")
        return
    if not target or not target.strip().isidentifier() or target.strip().startswith("_"):
        problem(el, f"{what} target '{target or ''}' is not a valid variable name")
    if source is not None and not source.strip():
        problem(el, f"{what} source is empty")
    if expression is not None:
        try:
            python = to_python(expression)
        except ExpressionError as exc:
            problem(el, f"{what} sourceExpression '{expression}' cannot be translated: {exc}")
            return
        if compile_check(el, python):
            m.set("sourceExpression", python)


def called_elements(specs: list[Any]) -> list[tuple[str, str, str, int | None]]:
    """(element id, called process id, binding, version) of every call activity in `specs`."""
    found = []
    for spec in specs:
        for ts in spec.task_specs.values():
            if isinstance(ts, AlmenCallActivity):
                found.append((ts.bpmn_id, ts.spec, ts.binding, ts.version))
    return found


def is_element(el: Any, name: str) -> bool:
    return isinstance(el.tag, str) and etree.QName(el).localname == name


# -- serialisation -------------------------------------------------------------------------------

class CallActivityConverter(SubWorkflowConverter):
    def to_dict(self, spec: Any) -> dict:
        dct = super().to_dict(spec)
        dct.update(binding=spec.binding, version=spec.version, in_mappings=spec.in_mappings,
                   out_mappings=spec.out_mappings)
        return dct


CONVERTERS = {
    AlmenSubProcess: SubWorkflowConverter,
    AlmenTransaction: SubWorkflowConverter,
    AlmenCallActivity: CallActivityConverter,
}
