"""The script engine SpiffWorkflow calls for every script, condition and expression of a diagram.

Diagrams and form values are untrusted. A simple expression (a literal, a variable, a comparison:
engine/sandbox/fastpath.py) is evaluated in-process, since its cost is bounded by its data. Every
other evaluation runs in an evaluator process with a hard CPU, memory and wall-clock budget
(engine/sandbox/), so no model can hold the server's memory or GIL. Whatever a script stores must
be JSON data within the size bounds (engine/sandbox/values.py); a breach of any limit is an error
here, which SpiffWorkflow turns into an error task and the engine into an incident.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from .business_calendar import BusinessCalendar
from .clock import Clock, SystemClock
from .limits import DEFAULT_LIMITS, Limits
from .sandbox.fastpath import FastPath
from .sandbox.pool import EvaluatorFailed, EvaluatorPool, shared_pool
from .sandbox.restricted import ScriptCompileError, compile_restricted_source, referenced_names
from .sandbox.values import DataError, decode, encode

__all__ = ["RestrictedScriptEngine", "SandboxedEnvironment", "ScriptCompileError", "ScriptFailed", "describe_error",
           "compile_restricted_source"]

_FRAME_OVERHEAD = 65_536


class ScriptFailed(Exception):
    """A script or expression failed in its evaluator: an error it raised, or a limit it broke."""

    def __init__(self, kind: str, message: str, type_name: str | None = None, line: int | None = None,
                 variable: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind  # error | timeout | memory | data | crash | busy
        self.type_name = type_name
        self.line = line
        self.variable = variable
        self.message = message

    def describe(self) -> str:
        if self.kind == "error":
            where = f" (line {self.line})" if self.line else ""
            return f"{self.type_name}: {self.message}{where}"
        if self.kind in ("timeout", "memory", "crash"):
            return f"stopped: it {self.message}"
        return self.message


class SandboxedEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluates against task data: simple expressions in-process, everything else in an evaluator."""

    def __init__(self, clock: Clock, calendar: BusinessCalendar, limits: Limits,
                 pool: EvaluatorPool | None = None) -> None:
        super().__init__({})
        self.clock = clock
        self.calendar = calendar
        self.limits = limits
        self.fast = FastPath()
        self._pool = pool

    @property
    def pool(self) -> EvaluatorPool:
        if self._pool is None:
            self._pool = shared_pool(self.limits.evaluator_processes)
        return self._pool

    # -- SpiffWorkflow environment interface ---------------------------------------------
    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        fast = self.fast.compile(expression)
        if fast is not None:
            return fast(context, external_context)
        return decode(self._call("eval", expression, context, external_context)["value"])

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        answer = self._call("exec", script, context, external_context)
        for key in answer["del"]:
            context.pop(key, None)
        context.update({key: decode(value) for key, value in answer["set"].items()})
        return True

    def call_service(self, context: dict, **kwargs: Any) -> Any:
        raise NotImplementedError("service tasks are not supported")

    # -- the evaluator round trip ----------------------------------------------------------
    def _call(self, op: str, source: str, context: dict, external: dict | None) -> dict[str, Any]:
        limits = self.limits
        try:
            names = referenced_names("eval" if op == "eval" else "exec", source)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise ScriptFailed("error", str(exc), exc.__class__.__name__) from None
        shipped = context if names is None else {k: context[k] for k in names if k in context}
        try:
            ctx = {k: encode(v, k, limits.max_data_depth) for k, v in shipped.items()}
            ext = {k: encode(v, k, limits.max_data_depth) for k, v in (external or {}).items()
                   if names is None or k in names}
        except DataError as exc:
            raise ScriptFailed("data", str(exc), variable=exc.variable) from None
        request = {"op": op, "src": source, "ctx": ctx, "ext": ext, "now": self.clock.now().isoformat(),
                   "cpu": limits.eval_cpu_seconds, "mem": limits.eval_memory_mb,
                   "var_bytes": limits.max_variable_bytes, "case_bytes": limits.max_instance_bytes,
                   "depth": limits.max_data_depth}
        wall = max(limits.eval_wall_seconds, limits.eval_cpu_seconds * 2 + 1)
        calendar = ((id(self.calendar), self.calendar.version), self.calendar.meetings())
        try:
            answer = self.pool.call(request, wall, limits.max_instance_bytes + _FRAME_OVERHEAD, calendar)
        except EvaluatorFailed as exc:
            raise ScriptFailed(exc.kind, exc.message) from None
        if not answer.get("ok"):
            raise ScriptFailed(answer.get("kind", "error"), answer.get("message", ""), answer.get("type"),
                               answer.get("line"), answer.get("variable"))
        return answer


class RestrictedScriptEngine(PythonScriptEngine):
    """SpiffWorkflow script engine that only runs restricted code and knows the engine's clock."""

    def __init__(self, clock: Clock | None = None, calendar: BusinessCalendar | None = None,
                 limits: Limits | None = None) -> None:
        self.clock = clock or SystemClock()
        self.calendar = calendar or BusinessCalendar()
        # Read by task specs and event definitions at run time (cardinality, call depth, timers).
        self.limits = limits or DEFAULT_LIMITS
        super().__init__(environment=SandboxedEnvironment(self.clock, self.calendar, self.limits))

    def validate(self, expression: str) -> None:
        compile_restricted_source("eval", expression)

    def evaluate(self, task: Any, expression: str, external_context: dict | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as se:
            se.add_note(f"Error evaluating expression '{_short(expression)}'")
            raise
        except Exception as e:
            raise WorkflowTaskException(f"Error evaluating expression '{_short(expression)}': {describe_error(e)}",
                                        task=task, exception=e) from e

    def execute(self, task: Any, script: str, external_context: dict | None = None) -> bool:
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except SpiffWorkflowException:
            raise
        except Exception as e:
            raise WorkflowTaskException(f"Script failed: {describe_error(e)}", task=task, exception=e) from e


def _short(text: str, limit: int = 200) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "…"


def describe_error(exc: BaseException) -> str:
    """An exception as "Type: message"; a failed evaluation as what its evaluator reported."""
    if isinstance(exc, ScriptFailed):
        return exc.describe()
    return f"{exc.__class__.__name__}: {exc}"
