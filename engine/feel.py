"""The FEEL subset that DMN tables from Camunda Modeler use, translated to Python for SpiffWorkflow."""

from __future__ import annotations

import re


class FeelError(ValueError):
    pass


_RANGE = re.compile(r"^([\[\]\(])\s*(.+?)\s*\.\.\s*(.+?)\s*([\[\]\)])$")
_COMPARISON = re.compile(r"^(<=|>=|<|>|==|!=)\s*(.+)$")
_UNSUPPORTED = re.compile(r"\b(date and time|date|time|duration)\s*\(")
_LITERALS = {"true": "True", "false": "False", "null": "None"}


def translate_literal(text: str) -> str:
    """An output entry or input expression: FEEL literals become Python ones."""
    stripped = (text or "").strip()
    if _UNSUPPORTED.search(stripped):
        raise FeelError("FEEL date/time functions are not supported")
    return _LITERALS.get(stripped, stripped)


def translate_input_entry(text: str) -> str:
    """A unary test. '-' or empty matches anything; SpiffWorkflow reads '-' that way."""
    stripped = (text or "").strip()
    if stripped in ("", "-"):
        return "-"
    if _UNSUPPORTED.search(stripped):
        raise FeelError("FEEL date/time functions are not supported")
    negate = False
    m = re.match(r"^not\s*\((.*)\)$", stripped)
    if m:
        negate, stripped = True, m.group(1).strip()
    items = _split_top_level(stripped)
    if len(items) > 1:
        if any(_RANGE.match(i) or _COMPARISON.match(i) for i in items):
            tests = " or ".join(f"({_single_test(i)})" for i in items)
            return f"not ({tests})" if negate else tests
        values = ", ".join(translate_literal(i) for i in items)
        return f" {'not in' if negate else 'in'} ({values},)"
    test = _single_test(stripped)
    if negate:
        return f"not ({test})" if "?" in test else f"not (? == ({test}))"
    return test


def _single_test(item: str) -> str:
    m = _RANGE.match(item)
    if m:
        lo_br, lo, hi, hi_br = m.groups()
        lo_op = "<=" if lo_br == "[" else "<"
        hi_op = "<=" if hi_br == "]" else "<"
        return f"{translate_literal(lo)} {lo_op} ? {hi_op} {translate_literal(hi)}"
    m = _COMPARISON.match(item)
    if m:
        return f"? {m.group(1)} {translate_literal(m.group(2))}"
    return translate_literal(item)


def split_list(text: str) -> list[str]:
    """A comma-separated FEEL list ('"a", "b"') split at its top-level commas."""
    return _split_top_level(text)


def _split_top_level(text: str) -> list[str]:
    items, depth, quote, current = [], 0, None, ""
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        current += ch
    items.append(current.strip())
    return [i for i in items if i]
