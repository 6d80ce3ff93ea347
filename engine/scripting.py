"""Restricted execution of scripts and expressions from uploaded diagrams.

Diagrams are untrusted input: every script, condition and expression is compiled with
RestrictedPython (no imports, no names or attributes starting with "_", no open/exec/eval)
and runs with a small whitelist of helpers and a CPU-time budget.
"""

from __future__ import annotations

import ast
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from .business_calendar import BusinessCalendar
from .clock import Clock, SystemClock
from .limits import DEFAULT_LIMITS, Limits

DEFAULT_CPU_SECONDS = 2.0
_MISSING = object()
MAX_RANGE = 100_000


class ScriptTimeout(Exception):
    pass


class ScriptCompileError(SyntaxError):
    pass


def _safe_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise ValueError(f"range() of {len(r)} items exceeds the limit of {MAX_RANGE}")
    return r


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    ops: dict[str, Callable[[Any, Any], Any]] = {
        "+=": lambda a, b: a + b,
        "-=": lambda a, b: a - b,
        "*=": lambda a, b: a * b,
        "/=": lambda a, b: a / b,
        "//=": lambda a, b: a // b,
        "%=": lambda a, b: a % b,
        "|=": lambda a, b: a | b,
        "&=": lambda a, b: a & b,
    }
    if op not in ops:
        raise ValueError(f"operator {op} is not allowed")
    return ops[op](x, y)


def _write_guard(obj: Any) -> Any:
    # Task data is plain dicts and lists: writing into those is what scripts are for.
    if isinstance(obj, dict | list | set):
        return obj
    return full_write_guard(obj)


class _NullPrint:
    """Scripts may call print(); output is discarded rather than leaking to the server log."""

    def __init__(self, _getattr_: Any = None) -> None:
        pass

    def _call_print(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __call__(self) -> str:
        return ""


def _is_empty(value: Any) -> bool:
    """JUEL's `empty` operator."""
    if value is None:
        return True
    try:
        return len(value) == 0
    except TypeError:
        return False


class CompileCache:
    """Compiled code by (mode, source). Diagrams re-evaluate the same few expressions constantly."""

    def __init__(self, size: int = 2048) -> None:
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._size = size

    def get(self, mode: str, source: str) -> Any:
        key = (mode, source)
        code = self._items.get(key)
        if code is not None:
            self._items.move_to_end(key)
            return code
        code = compile_restricted_source(mode, source)
        self._items[key] = code
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return code


def compile_restricted_source(mode: str, source: str) -> Any:
    """Compile a script ('exec') or expression ('eval'); raise ScriptCompileError with a readable reason."""
    if source is None or not str(source).strip():
        raise ScriptCompileError("empty script or expression")
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(source.strip() if mode == "eval" else source, "<script>")
    if result.errors:
        raise ScriptCompileError("; ".join(result.errors))
    forbidden = _forbidden_constructs(source.strip() if mode == "eval" else source, mode)
    if forbidden:
        raise ScriptCompileError("; ".join(forbidden))
    return result.code


# RestrictedPython compiles these and only fails when they run; refuse them when a diagram is deployed.
_FORBIDDEN_CALLS = {"open", "exec", "eval", "compile", "__import__", "getattr", "setattr", "delattr", "globals",
                    "locals", "vars", "input", "breakpoint", "memoryview"}


def _forbidden_constructs(source: str, mode: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, mode=mode)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(f"Line {node.lineno}: import statements are not allowed.")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FORBIDDEN_CALLS:
            found.append(f"Line {node.lineno}: {node.func.id}() is not allowed.")
    return found


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluates against task data with only whitelisted helpers in scope."""

    def __init__(self, clock: Clock, calendar: BusinessCalendar, cpu_seconds: float = DEFAULT_CPU_SECONDS) -> None:
        self.clock = clock
        self.calendar = calendar
        self.cpu_seconds = cpu_seconds
        self.cache = CompileCache()
        super().__init__(self._helpers())

    def _helpers(self) -> dict[str, Any]:
        cal = self.calendar
        clock = self.clock
        builtins = dict(safe_builtins)
        builtins.update(
            {
                "range": _safe_range,
                "sum": sum, "min": min, "max": max, "sorted": sorted, "any": any, "all": all,
                "enumerate": enumerate, "list": list, "dict": dict, "set": set, "reversed": reversed,
                "map": map, "filter": filter,
            }
        )
        for name in ("open", "exec", "eval", "compile", "__import__", "getattr", "setattr", "delattr",
                     "globals", "locals", "vars", "input", "breakpoint", "memoryview", "type"):
            builtins.pop(name, None)
        return {
            "__builtins__": builtins,
            "_getattr_": safer_getattr,
            "_getitem_": default_guarded_getitem,
            "_getiter_": iter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_write_": _write_guard,
            "_inplacevar_": _inplacevar,
            "_print_": _NullPrint,
            "is_empty": _is_empty,
            "date": date,
            "datetime": datetime,
            "timedelta": timedelta,
            "now": clock.now,
            "today": lambda: clock.now().date(),
            "iso": lambda d: d.isoformat() if hasattr(d, "isoformat") else str(d),
            "parse_date": lambda s: date.fromisoformat(str(s)[:10]),
            "add_days": lambda d, n: _as_date(d) + timedelta(days=n),
            "add_working_days": lambda d, n: cal.add_working_days(_as_date(d), n),
            "is_working_day": lambda d: cal.is_working_day(_as_date(d)),
            "next_meeting": lambda forum, after=None: cal.next_meeting(forum, _as_date(after) if after else clock.now().date()),
        }

    # -- SpiffWorkflow environment interface ---------------------------------------------
    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        code = self.cache.get("eval", expression)
        scope = self._scope(context, external_context)
        return self._run(lambda: eval(code, scope))  # noqa: S307 - restricted bytecode

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        code = self.cache.get("exec", script)
        scope = self._scope(context, external_context)
        self._run(lambda: exec(code, scope))  # noqa: S102 - restricted bytecode
        helpers = self.globals
        external = external_context or {}
        for key in list(context):
            if key not in scope:
                del context[key]
        for key, value in scope.items():
            if key.startswith("_") or callable(value):
                continue
            if helpers.get(key, _MISSING) is value or (key in external and key not in context):
                continue
            context[key] = value
        return True

    def call_service(self, context: dict, **kwargs: Any) -> Any:
        raise NotImplementedError("service tasks are not supported")

    def _scope(self, context: dict, external_context: dict | None) -> dict:
        scope = dict(self.globals)
        # var("x", default) reads a variable that may not be set (optional form fields are not).
        scope["var"] = lambda name, default=None: context.get(name, default)
        if external_context:
            scope.update(external_context)
        scope.update(context)
        return scope

    def _run(self, fn: Callable[[], Any]) -> Any:
        deadline = time.thread_time() + self.cpu_seconds
        previous = sys.gettrace()
        counter = [0]

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            counter[0] += 1
            if counter[0] % 200 == 0 and time.thread_time() > deadline:
                raise ScriptTimeout(f"script exceeded its CPU time limit of {self.cpu_seconds:g} s")
            return tracer

        sys.settrace(tracer)
        try:
            return fn()
        finally:
            sys.settrace(previous)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class RestrictedScriptEngine(PythonScriptEngine):
    """SpiffWorkflow script engine that only runs restricted code and knows the engine's clock."""

    def __init__(self, clock: Clock | None = None, calendar: BusinessCalendar | None = None,
                 limits: Limits | None = None) -> None:
        self.clock = clock or SystemClock()
        self.calendar = calendar or BusinessCalendar()
        # Read by task specs and event definitions at run time (cardinality, call depth, timers).
        self.limits = limits or DEFAULT_LIMITS
        super().__init__(environment=RestrictedEnvironment(self.clock, self.calendar, self.limits.eval_cpu_seconds))

    def validate(self, expression: str) -> None:
        compile_restricted_source("eval", expression)

    def evaluate(self, task: Any, expression: str, external_context: dict | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as se:
            se.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as e:
            raise WorkflowTaskException(f"Error evaluating expression '{expression}': {_describe(e)}",
                                        task=task, exception=e) from e

    def execute(self, task: Any, script: str, external_context: dict | None = None) -> bool:
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except SpiffWorkflowException:
            raise
        except Exception as e:
            raise WorkflowTaskException(f"Script failed: {_describe(e)}", task=task, exception=e) from e


def _describe(exc: Exception) -> str:
    return f"{exc.__class__.__name__}: {exc}"
