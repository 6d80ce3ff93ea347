"""Process data is JSON: what a script, an expression, a message or a form may store in a case.

Allowed: None, bool, int (at most MAX_INT_BITS), finite float, str, list/tuple, dict with str keys,
and the three time types the helpers return (date, datetime, timedelta), which cross process
boundaries as tagged objects. Anything else (sets, functions, NaN, tuple keys, cycles, values deeper
than the depth bound or larger than the size bound) is refused with DataError naming the variable,
so it becomes an incident instead of a 500 or invalid JSON in the database.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from typing import Any

# Python refuses to print ints of more than 4300 digits; stay clearly below that.
MAX_INT_BITS = 10_000
_TAG = "\x00t"  # a key no form or script produces by accident; dicts that use it are escaped


class DataError(ValueError):
    """A value cannot be stored as process data. `variable` names where it was found."""

    def __init__(self, variable: str | None, reason: str) -> None:
        self.variable = variable
        self.reason = reason
        super().__init__(f"variable '{variable}' {reason}" if variable else f"the value {reason}")


class CaseTooLarge(DataError):
    def __init__(self, size: int, limit: int) -> None:
        ValueError.__init__(self, f"the case's variables take {size:,} bytes; the limit per case is {limit:,}")
        self.variable = None
        self.reason = str(self)


def _kind(value: Any) -> str:
    if isinstance(value, set | frozenset):
        return "a set"
    if callable(value):
        return "a function"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    return f"a {type(value).__name__}"


def encode(value: Any, name: str | None = None, max_depth: int = 64) -> Any:
    """`value` as plain JSON types (time types tagged). Raises DataError for anything else."""
    return _encode(value, name, max_depth, 0, set())


def _encode(value: Any, path: str | None, max_depth: int, depth: int, active: set[int]) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise DataError(path, f"holds an integer of more than {MAX_INT_BITS} bits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataError(path, f"holds {value!r}, which is not a JSON number")
        return float(value)
    if isinstance(value, datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {_TAG: "timedelta", "v": value.total_seconds()}
    if isinstance(value, list | tuple | dict):
        if depth >= max_depth:
            raise DataError(path, f"is nested deeper than {max_depth} levels")
        if id(value) in active:
            raise DataError(path, "contains itself (a cycle)")
        active.add(id(value))
        try:
            if isinstance(value, dict):
                out: dict[str, Any] = {}
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise DataError(path, f"has a key that is {_kind(key)}, not text ({key!r:.40})")
                    out[key] = _encode(item, f"{path}.{key}" if path else key, max_depth, depth + 1, active)
                return {_TAG: "dict", "v": out} if _TAG in out else out
            return [_encode(item, f"{path}[{i}]" if path else f"[{i}]", max_depth, depth + 1, active)
                    for i, item in enumerate(value)]
        finally:
            active.discard(id(value))
    raise DataError(path, f"holds {_kind(value)}, which is not JSON data")


def decode(value: Any) -> Any:
    """The inverse of encode()."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag is None:
            return {k: decode(v) for k, v in value.items()}
        raw = value["v"]
        if tag == "datetime":
            return datetime.fromisoformat(raw)
        if tag == "date":
            return date.fromisoformat(raw)
        if tag == "timedelta":
            return timedelta(seconds=raw)
        return {k: decode(v) for k, v in raw.items()}
    return value


def dumps(value: Any) -> str:
    """Compact JSON of already encoded data; never NaN or Infinity."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def check_variables(data: dict[str, Any], max_variable_bytes: int, max_total_bytes: int | None = None,
                    max_depth: int = 64) -> int:
    """Raise DataError unless every variable of `data` is JSON data within the size bounds.
    Returns the total encoded size in bytes."""
    total = 0
    for key, value in data.items():
        if not isinstance(key, str):
            raise DataError(None, f"has a variable name that is {_kind(key)}, not text")
        size = len(dumps(encode(value, key, max_depth)).encode("utf-8"))
        if size > max_variable_bytes:
            raise DataError(key, f"is {size:,} bytes; the limit per variable is {max_variable_bytes:,}")
        total += size
    if max_total_bytes is not None and total > max_total_bytes:
        raise CaseTooLarge(total, max_total_bytes)
    return total
