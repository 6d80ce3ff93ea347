"""Translate the expression forms diagrams use into the Python the script engine evaluates.

Camunda 7 diagrams write JUEL (`${a > 5 && !b}`); AlmenFlow evaluates Python. The common
JUEL subset is translated token by token; anything else (method calls, beans, `execution`)
is refused at deploy time with a reason, instead of failing at run time.
"""

from __future__ import annotations

import re

_ISO_DURATION = r"-?P(?!$)(\d+(?:[.,]\d+)?Y)?(\d+(?:[.,]\d+)?M)?(\d+(?:[.,]\d+)?W)?(\d+(?:[.,]\d+)?D)?(T(?=\d)(\d+(?:[.,]\d+)?H)?(\d+(?:[.,]\d+)?M)?(\d+(?:[.,]\d+)?S)?)?"
_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
_TIMER_LITERAL = re.compile(
    rf"^(?:{_ISO_DURATION}|{_ISO_DATETIME}|R\d*/(?:{_ISO_DATETIME}/)?{_ISO_DURATION}(?:/{_ISO_DATETIME})?)$",
    re.IGNORECASE,
)
_JUEL_BLOCK = re.compile(r"[$#]\{(.*?)\}", re.DOTALL)


class ExpressionError(ValueError):
    pass


def check_balanced(text: str) -> None:
    """Refuse `${forum` and the like: unterminated, it would be taken as a literal name."""
    depth = 0
    i = 0
    while i < len(text):
        if text.startswith(("${", "#{"), i):
            if depth:
                raise ExpressionError("'${' inside another '${...}'")
            depth = 1
            i += 2
            continue
        if text[i] == "}" and depth:
            depth = 0
        i += 1
    if depth:
        raise ExpressionError("'${' is not closed with '}'")


def is_timer_literal(text: str) -> bool:
    return bool(_TIMER_LITERAL.match(text.strip()))


def has_juel(text: str | None) -> bool:
    return bool(text and _JUEL_BLOCK.search(text))


def to_python(text: str) -> str:
    """A condition or value expression as Python. Plain Python passes through unchanged."""
    stripped = text.strip()
    check_balanced(stripped)
    if not has_juel(stripped):
        return stripped
    parts: list[str] = []
    pos = 0
    for m in _JUEL_BLOCK.finditer(stripped):
        if m.start() > pos:
            parts.append(repr(stripped[pos:m.start()]))
        parts.append(f"({translate_juel(m.group(1))})")
        pos = m.end()
    if pos < len(stripped):
        parts.append(repr(stripped[pos:]))
    if len(parts) == 1:
        return parts[0][1:-1] if parts[0].startswith("(") else parts[0]
    # Text with embedded expressions ("Sag ${nr}") is string interpolation.
    return " + ".join(p if p.startswith("'") or p.startswith('"') else f"str{p}" for p in parts)


def timer_to_python(text: str) -> str:
    """A timer/due-date expression as Python: bare ISO literals become string constants."""
    stripped = text.strip()
    if is_timer_literal(stripped):
        return repr(stripped.replace(",", "."))
    return to_python(stripped)  # checks that every '${' is closed


def names_to_python(text: str) -> str:
    """candidateGroups/assignee: a comma separated literal list, or an expression."""
    stripped = text.strip()
    check_balanced(stripped)
    if has_juel(stripped):
        return to_python(stripped)
    return repr(stripped)


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<op>==|!=|<=|>=|&&|\|\||[<>!+\-*/%()\[\],.?:])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_WORD_OPS = {
    "and": "and", "or": "or", "not": "not", "eq": "==", "ne": "!=", "lt": "<", "gt": ">",
    "le": "<=", "ge": ">=", "div": "/", "mod": "%", "true": "True", "false": "False", "null": "None",
}
_FORBIDDEN_ROOTS = {"execution", "task", "authentication", "environment", "variables", "connectorResult"}


def translate_juel(source: str) -> str:
    tokens = _tokenize(source)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, None)
        if kind == "name":
            if value in _WORD_OPS:
                out.append(_WORD_OPS[value])
            elif value == "empty":
                operand, i = _operand(tokens, i + 1)
                out.append(f"is_empty({operand})")
                continue
            else:
                if value in _FORBIDDEN_ROOTS:
                    raise ExpressionError(f"'{value}' refers to the Java engine and is not supported")
                if nxt == ("op", "("):
                    raise ExpressionError(f"function call '{value}(...)' is not supported")
                out.append(value)
        elif kind == "op":
            if value == "&&":
                out.append("and")
            elif value == "||":
                out.append("or")
            elif value == "!":
                out.append("not")
            elif value in ("?", ":"):
                raise ExpressionError("the conditional operator '?:' is not supported")
            elif value == ".":
                kind2, attr = nxt
                if kind2 != "name":
                    raise ExpressionError("'.' must be followed by a property name")
                after = tokens[i + 2] if i + 2 < len(tokens) else (None, None)
                if after == ("op", "("):
                    raise ExpressionError(f"method call '.{attr}(...)' is not supported")
                out.append(f"[{attr!r}]")
                i += 2
                continue
            else:
                out.append(value)
        else:
            out.append(value)
        i += 1
    return _join(out)


def _operand(tokens: list[tuple[str, str]], i: int) -> tuple[str, int]:
    """The simple operand of a prefix operator: a name with property accesses, or a parenthesised group."""
    if i >= len(tokens):
        raise ExpressionError("'empty' needs an operand")
    kind, value = tokens[i]
    if value == "(":
        depth, j = 0, i
        while j < len(tokens):
            if tokens[j][1] == "(":
                depth += 1
            elif tokens[j][1] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        inner = " ".join(v for _, v in tokens[i + 1:j])
        return f"({translate_juel(inner)})", j + 1
    if kind != "name":
        raise ExpressionError("'empty' needs a variable")
    text = translate_juel(value)
    j = i + 1
    while j + 1 < len(tokens) and tokens[j] == ("op", ".") and tokens[j + 1][0] == "name":
        text += f"[{tokens[j + 1][1]!r}]"
        j += 2
    return text, j


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    source = source.strip()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"cannot read '{source[pos:pos + 20]}'")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _join(parts: list[str]) -> str:
    text = ""
    for part in parts:
        if not text or part in (")", "]", ",") or part.startswith("[") or text.endswith(("(", "[")):
            text += part
        else:
            text += " " + part
    return text.replace("not not ", "").strip()
