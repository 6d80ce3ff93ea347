"""RestrictedPython compilation and the whitelisted scope scripts and expressions run in.

Diagrams are untrusted: every script, condition and expression is compiled with RestrictedPython
(no imports, no names or attributes starting with "_", no open/exec/eval) and runs with a small
whitelist of helpers. This module only compiles and builds scopes; running untrusted code happens
in the evaluator processes (engine/sandbox/child.py), where OS limits apply.
"""

from __future__ import annotations

import ast
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)

from ..business_calendar import BusinessCalendar

MAX_RANGE = 100_000


class ScriptCompileError(SyntaxError):
    pass


def compile_restricted_source(mode: str, source: str) -> Any:
    """Compile a script ('exec') or expression ('eval'); raise ScriptCompileError with a readable reason."""
    if source is None or not str(source).strip():
        raise ScriptCompileError("empty script or expression")
    text = source.strip() if mode == "eval" else source
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    try:
        result = compiler(text, "<script>")
    except (RecursionError, MemoryError, ValueError) as exc:  # absurd nesting, NUL bytes
        raise ScriptCompileError(f"cannot be compiled: {exc.__class__.__name__}") from None
    if result.errors:
        raise ScriptCompileError("; ".join(result.errors))
    forbidden = _forbidden_constructs(text, mode)
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


@lru_cache(maxsize=4096)
def referenced_names(mode: str, source: str) -> frozenset[str] | None:
    """The variables code may read: the names it uses and the constant arguments of var(). None when
    it calls var() with a computed name, so every variable must be at hand."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.strip() if mode == "eval" else source, mode=mode)):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "var":
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                return None
            names.add(first.value)
    return frozenset(names)


class CompileCache:
    """Compiled code by (mode, source): diagrams re-run the same few sources."""

    def __init__(self, size: int = 2048) -> None:
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._size = size

    def get(self, mode: str, source: str) -> Any:
        key = (mode, source)
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        entry = compile_restricted_source(mode, source)
        self._items[key] = entry
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return entry


def _safe_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise ValueError(f"range() of {len(r)} items exceeds the limit of {MAX_RANGE}")
    return r


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": lambda a, b: a + b,
    "-=": lambda a, b: a - b,
    "*=": lambda a, b: a * b,
    "/=": lambda a, b: a / b,
    "//=": lambda a, b: a // b,
    "%=": lambda a, b: a % b,
    "|=": lambda a, b: a | b,
    "&=": lambda a, b: a & b,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    if op not in _INPLACE:
        raise ValueError(f"operator {op} is not allowed")
    return _INPLACE[op](x, y)


def _write_guard(obj: Any) -> Any:
    # Task data is plain dicts and lists: writing into those is what scripts are for.
    if isinstance(obj, dict | list | set):
        return obj
    return full_write_guard(obj)


class _NullPrint:
    """Scripts may call print(); output is discarded rather than leaking to a log."""

    def __init__(self, _getattr_: Any = None) -> None:
        pass

    def _call_print(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __call__(self) -> str:
        return ""


def is_empty(value: Any) -> bool:
    """JUEL's `empty` operator."""
    if value is None:
        return True
    try:
        return len(value) == 0
    except TypeError:
        return False


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


_REMOVED_BUILTINS = ("open", "exec", "eval", "compile", "__import__", "getattr", "setattr", "delattr",
                     "globals", "locals", "vars", "input", "breakpoint", "memoryview", "type")


def make_globals(now: Callable[[], datetime], calendar: BusinessCalendar) -> dict[str, Any]:
    """The scope every script and expression starts from: guarded builtins and the helpers."""
    builtins = dict(safe_builtins)
    builtins.update({
        "range": _safe_range,
        "sum": sum, "min": min, "max": max, "sorted": sorted, "any": any, "all": all,
        "enumerate": enumerate, "list": list, "dict": dict, "set": set, "reversed": reversed,
        "map": map, "filter": filter,
    })
    for name in _REMOVED_BUILTINS:
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
        "is_empty": is_empty,
        "date": date,
        "datetime": datetime,
        "timedelta": timedelta,
        "now": now,
        "today": lambda: now().date(),
        "iso": lambda d: d.isoformat() if hasattr(d, "isoformat") else str(d),
        "parse_date": lambda s: date.fromisoformat(str(s)[:10]),
        "add_days": lambda d, n: as_date(d) + timedelta(days=n),
        "add_working_days": lambda d, n: calendar.add_working_days(as_date(d), n),
        "is_working_day": lambda d: calendar.is_working_day(as_date(d)),
        "next_meeting": lambda forum, after=None: calendar.next_meeting(
            forum, as_date(after) if after else now().date()),
    }


HELPER_NAMES = frozenset(make_globals(lambda: datetime(2000, 1, 1), BusinessCalendar()))
