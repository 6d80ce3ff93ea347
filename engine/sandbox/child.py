"""An evaluator process: runs untrusted scripts and expressions under OS limits.

Started by engine/sandbox/pool.py as `python -m engine.sandbox.child`; reads requests on stdin
and answers on stdout (engine/sandbox/protocol.py). Limits, from the inside out:
- a CPU-time interval timer (ITIMER_PROF) ends Python-level loops precisely with an error;
- RLIMIT_CPU kills the process when one C-level operation (`10**10**8`) outlasts the budget;
- RLIMIT_AS turns an allocation beyond the memory budget into MemoryError (the process then exits,
  so a fresh one replaces it);
- the engine kills the process when an answer takes longer than the wall-clock budget.
"""

from __future__ import annotations

import math
import os
import resource
import signal
import sys
import traceback
from datetime import date, datetime
from typing import Any

from ..business_calendar import BusinessCalendar
from .protocol import ChannelClosed, read_frame, write_frame
from .restricted import CompileCache, ScriptCompileError, make_globals
from .values import CaseTooLarge, DataError, decode, dumps, encode

MB = 1024 * 1024


class Timeout(BaseException):
    """BaseException, so a script's `except Exception:` cannot swallow it."""


def _on_cpu_timer(signum: int, frame: Any) -> None:
    raise Timeout()


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Evaluator:
    def __init__(self) -> None:
        self.cache = CompileCache()
        self.calendar = BusinessCalendar()
        self.calendar_key: Any = None
        self.now = datetime(2000, 1, 1)
        self.globals = make_globals(lambda: self.now, self.calendar)
        self.base_vm = _vm_size()

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        if "cal" in req:
            key, meetings = req["cal"]
            self.calendar = BusinessCalendar({f: [date.fromisoformat(d) for d in days]
                                              for f, days in meetings.items()})
            self.globals = make_globals(lambda: self.now, self.calendar)
            self.calendar_key = key
        self.now = datetime.fromisoformat(req["now"])
        mode = "eval" if req["op"] == "eval" else "exec"
        try:
            code = self.cache.get(mode, req["src"])
        except ScriptCompileError as exc:
            return {"ok": False, "kind": "error", "type": "SyntaxError", "message": str(exc)}
        context = {k: decode(v) for k, v in req["ctx"].items()}
        external = {k: decode(v) for k, v in (req.get("ext") or {}).items()}
        scope = dict(self.globals)
        # var("x", default) reads a variable that may not be set (optional form fields are not).
        scope["var"] = lambda name, default=None: context.get(name, default)
        scope.update(external)
        scope.update(context)
        self._limit(req)
        try:
            if mode == "eval":
                result = eval(code, scope)  # noqa: S307 - RestrictedPython bytecode, OS limits apply
                return {"ok": True, "value": encode(result, None, req["depth"])}
            exec(code, scope)  # noqa: S102 - RestrictedPython bytecode, OS limits apply
            return {"ok": True, **self._changes(scope, req, context, external)}
        except Timeout:
            return {"ok": False, "kind": "timeout", "message": f"exceeded its CPU time limit of {req['cpu']:g} s"}
        except MemoryError:
            return {"ok": False, "kind": "memory", "recycle": True,
                    "message": f"exceeded its memory limit of {req['mem']} MB"}
        except DataError as exc:
            return {"ok": False, "kind": "data", "message": str(exc), "variable": exc.variable}
        except RecursionError:
            return {"ok": False, "kind": "error", "type": "RecursionError", "recycle": True,
                    "message": "maximum recursion depth exceeded"}
        except BaseException as exc:  # noqa: BLE001 - every failure of untrusted code is reported, never raised
            return {"ok": False, "kind": "error", "type": exc.__class__.__name__, "message": str(exc)[:2000],
                    "line": _script_line(exc)}
        finally:
            self._unlimit()

    def _changes(self, scope: dict[str, Any], req: dict[str, Any], context: dict[str, Any],
                 external: dict[str, Any]) -> dict[str, Any]:
        """The variables the script created or changed, and those it deleted, each checked as data."""
        changed: dict[str, Any] = {}
        shipped = req["ctx"]
        total = 0
        for key, value in scope.items():
            if key.startswith("_") or callable(value):
                continue
            if self.globals.get(key, _MISSING) is value or (key in external and key not in context):
                continue
            encoded = encode(value, key, req["depth"])
            text = dumps(encoded)
            if len(text) > req["var_bytes"]:
                raise DataError(key, f"is {len(text):,} bytes; the limit per variable is {req['var_bytes']:,}")
            total += len(text)
            if total > req["case_bytes"]:
                raise CaseTooLarge(total, req["case_bytes"])
            if key not in shipped or dumps(shipped[key]) != text:
                changed[key] = encoded
        return {"set": changed, "del": [k for k in context if k not in scope]}

    def _limit(self, req: dict[str, Any]) -> None:
        cpu = float(req["cpu"])
        resource.setrlimit(resource.RLIMIT_CPU,
                           (math.ceil(_cpu_used() + cpu) + 1, resource.RLIM_INFINITY))
        resource.setrlimit(resource.RLIMIT_AS, (self.base_vm + int(req["mem"]) * MB, resource.RLIM_INFINITY))
        # Re-armed every 50 ms after the first expiry, in case a bare `except:` swallowed the first.
        signal.setitimer(signal.ITIMER_PROF, cpu, 0.05)

    @staticmethod
    def _unlimit() -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


_MISSING = object()


def _script_line(exc: BaseException) -> int | None:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<script>":
            return frame.lineno
    return None


def main() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGPROF, _on_cpu_timer)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the engine, which ends us
    requests, answers = sys.stdin.fileno(), os.dup(sys.stdout.fileno())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # nothing but frames on the answer channel
    evaluator = Evaluator()
    while True:
        try:
            req = read_frame(requests)
        except ChannelClosed:
            return
        try:
            answer = evaluator.handle(req)
        except Timeout:  # the timer's last tick landed after the evaluation
            answer = {"ok": False, "kind": "timeout", "message": f"exceeded its CPU time limit of {req['cpu']:g} s"}
        write_frame(answers, answer)
        if answer.get("recycle"):
            return


if __name__ == "__main__":
    main()
