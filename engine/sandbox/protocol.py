"""Frames between the engine and its evaluator processes: a 4-byte length, then UTF-8 JSON.

JSON, never pickle: if untrusted code ever got control of an evaluator, what it sends back is still
only data."""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

HEADER = struct.Struct(">I")


class ChannelClosed(Exception):
    """The other side closed the pipe (it exited or was killed)."""


class ChannelTimeout(Exception):
    pass


class FrameTooLarge(Exception):
    pass


def write_frame(fd: int, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    data = HEADER.pack(len(body)) + body
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_frame(fd: int, deadline: float | None = None, max_bytes: int | None = None) -> dict[str, Any]:
    """One frame from `fd`; waits until the monotonic `deadline` at the latest (None: forever)."""
    header = _read_exact(fd, HEADER.size, deadline)
    (length,) = HEADER.unpack(header)
    if max_bytes is not None and length > max_bytes:
        raise FrameTooLarge(f"answer of {length:,} bytes exceeds {max_bytes:,}")
    message = json.loads(_read_exact(fd, length, deadline))
    if not isinstance(message, dict):
        raise ValueError("a frame must hold a JSON object")
    return message


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while remaining:
        if deadline is not None:
            wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not poller.poll(wait_ms):
                raise ChannelTimeout()
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise ChannelClosed()
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
