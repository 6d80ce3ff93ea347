"""In-process evaluation of expressions whose cost is bounded by their data.

Most expressions in diagrams are a literal ('P5D', 'Sekretariatet'), a variable (`approved`) or a
comparison (`udfald == 'anbefalet' and not haster`). Such an expression has no loop, no call that
allocates and no arithmetic, so it cannot run away: it is evaluated here without the round trip to
an evaluator process. Anything else (arithmetic, calls, comprehensions, slices) goes to the sandbox.
"""

from __future__ import annotations

import ast
from collections import ChainMap, OrderedDict
from collections.abc import Callable
from typing import Any

from .restricted import is_empty

MAX_LITERAL = 10_000
_CALLS: dict[str, int] = {"is_empty": 1, "len": 1, "var": 2}
_COMPARE_OPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)

FastExpression = Callable[[dict[str, Any], dict[str, Any] | None], Any]


def _simple(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, str):
            return len(value) <= MAX_LITERAL
        return value is None or isinstance(value, bool | float) or (isinstance(value, int) and
                                                                   value.bit_length() <= 64)
    if isinstance(node, ast.Name):
        return not node.id.startswith("_")
    if isinstance(node, ast.BoolOp):
        return all(_simple(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.Not | ast.USub | ast.UAdd) and _simple(node.operand)
    if isinstance(node, ast.Compare):
        return all(isinstance(op, _COMPARE_OPS) for op in node.ops) and _simple(node.left) and \
            all(_simple(c) for c in node.comparators)
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and _simple(node.slice) and _simple(node.value)
    if isinstance(node, ast.List | ast.Tuple):
        return len(node.elts) <= 100 and all(_simple(e) for e in node.elts)
    if isinstance(node, ast.Call):
        return (isinstance(node.func, ast.Name) and node.func.id in _CALLS and not node.keywords
                and 1 <= len(node.args) <= _CALLS[node.func.id] and all(_simple(a) for a in node.args))
    return False


class FastPath:
    """Compiled simple expressions by source; None for sources that need the sandbox."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._size = size

    def compile(self, source: str) -> FastExpression | None:
        hit = self._items.get(source, _MISSING)
        if hit is not _MISSING:
            self._items.move_to_end(source)
            return hit
        result = self._build(source)
        self._items[source] = result
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return result

    @staticmethod
    def _build(source: str) -> FastExpression | None:
        text = source.strip()
        if len(text) > MAX_LITERAL * 2:
            return None
        try:
            tree = ast.parse(text, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        if not _simple(tree.body):
            return None
        code = compile(tree, "<expression>", "eval")

        def run(context: dict[str, Any], external: dict[str, Any] | None = None) -> Any:
            scope: dict[str, Any] = {"__builtins__": {}, "is_empty": is_empty, "len": len,
                                     "var": lambda name, default=None: context.get(name, default)}
            names = ChainMap(context, external) if external else context
            return eval(code, scope, names)  # noqa: S307 - whitelisted AST without loops, calls or arithmetic

        return run


_MISSING = object()
