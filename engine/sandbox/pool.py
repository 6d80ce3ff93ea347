"""The engine's side of the evaluator processes: start them, hand out one per evaluation, kill and
replace one that breaks a limit. Waiting for an answer releases the GIL, so a hostile script costs
the web server or worker one thread's wait, never its other requests."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .protocol import ChannelClosed, ChannelTimeout, FrameTooLarge, read_frame, write_frame

# The engine package this process runs: the evaluator must import the same code.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_SIGXCPU = 24


class EvaluatorFailed(Exception):
    """An evaluation was stopped from outside: `kind` is timeout, memory or crash."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class EvaluatorProcess:
    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        env.pop("PYTHONSTARTUP", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.sandbox.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True, env=env, cwd="/")
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.requests = self.proc.stdin.fileno()
        self.answers = self.proc.stdout.fileno()
        self.calendar_key: Any = None

    def call(self, request: dict[str, Any], wall_seconds: float, max_answer_bytes: int) -> dict[str, Any]:
        try:
            write_frame(self.requests, request)
            return read_frame(self.answers, time.monotonic() + wall_seconds, max_answer_bytes)
        except ChannelTimeout:
            self.kill()
            raise EvaluatorFailed("timeout", f"exceeded its wall-clock time limit of {wall_seconds:g} s and was stopped") from None
        except FrameTooLarge as exc:
            self.kill()
            raise EvaluatorFailed("data", f"the evaluator's answer was too large: {exc}") from None
        except (ChannelClosed, BrokenPipeError, OSError, ValueError):
            code = self._exit_code()
            if code == -_SIGXCPU:
                raise EvaluatorFailed("timeout", "exceeded its CPU time limit and was stopped") from None
            raise EvaluatorFailed("crash", f"stopped the evaluator process (exit status {code})") from None

    def _exit_code(self) -> int | None:
        try:
            return self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class EvaluatorPool:
    """At most `size` evaluator processes; a caller waits for a free one."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._idle: list[EvaluatorProcess] = []
        self._count = 0
        self._cond = threading.Condition()
        self._pid = os.getpid()
        self.calls = 0  # evaluations sent to a process (the fast path sends none)
        self.replaced = 0  # processes killed or retired after breaking a limit

    def call(self, request: dict[str, Any], wall_seconds: float, max_answer_bytes: int,
             calendar: tuple[Any, dict[str, list[str]]] | None = None) -> dict[str, Any]:
        worker = self._acquire(wall_seconds)
        self.calls += 1
        healthy = False
        try:
            if calendar is not None and worker.calendar_key != calendar[0]:
                request = dict(request, cal=[calendar[0], calendar[1]])
            answer = worker.call(request, wall_seconds, max_answer_bytes)
            if calendar is not None:
                worker.calendar_key = calendar[0]
            healthy = not answer.get("recycle")
            return answer
        finally:
            self._release(worker, healthy)

    def _acquire(self, wait_seconds: float) -> EvaluatorProcess:
        deadline = time.monotonic() + max(30.0, wait_seconds * 4)
        with self._cond:
            self._after_fork()
            while True:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        return worker
                    self._count -= 1
                if self._count < self.size:
                    self._count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EvaluatorFailed("busy", "no evaluator process became free in time")
                self._cond.wait(remaining)
        try:
            return EvaluatorProcess()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, worker: EvaluatorProcess, healthy: bool) -> None:
        if not healthy or not worker.alive:
            worker.kill()
            self.replaced += 1
        with self._cond:
            if healthy and worker.alive:
                self._idle.append(worker)
            else:
                self._count -= 1
            self._cond.notify()

    def _after_fork(self) -> None:
        # A forked child (e.g. a test's worker process) must not share its parent's pipes.
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._idle = []
            self._count = 0

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for worker in idle:
            worker.kill()

    def pids(self) -> list[int]:
        with self._cond:
            return [w.proc.pid for w in self._idle]


_pools: dict[int, EvaluatorPool] = {}
_pools_lock = threading.Lock()


def shared_pool(size: int) -> EvaluatorPool:
    """One pool per process and size: every Engine in the process shares the evaluators."""
    with _pools_lock:
        pool = _pools.get(size)
        if pool is None:
            pool = _pools[size] = EvaluatorPool(size)
        return pool


@atexit.register
def _close_all() -> None:
    for pool in list(_pools.values()):
        pool.close()
