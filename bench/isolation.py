"""What isolating untrusted code costs: each evaluation and each task completion, with the evaluator
processes (what AlmenFlow runs) beside the same work in-process without OS limits (what it ran before),
measured interleaved in one run so machine noise hits both sides alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine import Engine, FrozenClock
from engine.sandbox.restricted import CompileCache, make_globals
from engine.sandbox.values import decode, encode
from engine.scripting import SandboxedEnvironment

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
ROUNDS = 7


class InProcessEnvironment(SandboxedEnvironment):
    """The baseline only: RestrictedPython in the engine's own process, no OS limits (never used by
    the engine). Values cross the same JSON check, so the difference is the process round trip."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.compiled = CompileCache()
        self.scope = make_globals(self.clock.now, self.calendar)

    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        fast = self.fast.compile(expression)
        if fast is not None:
            return fast(context, external_context)
        scope = dict(self.scope, **(external_context or {}), **context)
        return decode(encode(eval(self.compiled.get("eval", expression), scope)))  # noqa: S307

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        scope = dict(self.scope, **context)
        exec(self.compiled.get("exec", script), scope)  # noqa: S102
        for key, value in scope.items():
            if not key.startswith("_") and not callable(value) and self.scope.get(key) is not value:
                context[key] = decode(encode(value, key))
        return True


def _per_call(fn: Callable[[], Any], repeat: int) -> float:
    began = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - began) / repeat


def _interleaved(a: Callable[[], Any], b: Callable[[], Any], repeat: int, rounds: int = ROUNDS) -> tuple[float, float]:
    """Median seconds per call of a and b, measured in alternating rounds."""
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(_per_call(a, repeat))
        times_b.append(_per_call(b, repeat))
    return statistics.median(times_a), statistics.median(times_b)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def run(tmp: str, process_xml: str, rounds: int = ROUNDS, scale: float = 1.0) -> list[tuple[str, str]]:
    """`rounds` and `scale` (a fraction of the repeats) make the quick run quick."""
    rows: list[tuple[str, str]] = []

    def times(n: int) -> int:
        return max(1, int(n * scale))

    clock = FrozenClock(START)
    sandboxed = Engine.create(f"sqlite:///{tmp}/isolated.sqlite", clock=clock)
    in_process = Engine.create(f"sqlite:///{tmp}/in_process.sqlite", clock=clock)
    in_process.script_engine.environment = InProcessEnvironment(clock, in_process.calendar, in_process.limits)
    env_s, env_i = sandboxed.script_engine.environment, in_process.script_engine.environment
    data = {"total": 2, "antal": 1, "titel": "Boligsocial indsats", "items": list(range(20))}

    fast, _ = _interleaved(lambda: env_s.evaluate("total > 1 and titel != ''", data),
                           lambda: env_i.evaluate("total > 1 and titel != ''", data), times(2000), rounds)
    rows.append(("condition `total > 1 and titel != ''` (fast path, both sides in-process)", us(fast)))
    iso, inp = _interleaved(lambda: env_s.evaluate("sum(items) * 2 > total", data),
                            lambda: env_i.evaluate("sum(items) * 2 > total", data), times(300), rounds)
    rows.append(("expression `sum(items) * 2 > total`: evaluator process / in-process",
                 f"{us(iso)} / {us(inp)} (+{us(iso - inp)} per evaluation)"))
    script = "frist = iso(add_working_days(today(), 10))\ntotal = sum([antal, 1])"
    iso, inp = _interleaved(lambda: env_s.execute(script, dict(data)), lambda: env_i.execute(script, dict(data)), times(300),
                            rounds)
    rows.append(("2-line script of the benchmark process: evaluator process / in-process",
                 f"{us(iso)} / {us(inp)} (+{us(iso - inp)} per script)"))

    bpmn = Path(tmp) / "isolation.bpmn"
    bpmn.write_text(process_xml)
    engines = (sandboxed, in_process)
    for eng in engines:
        eng.init_db()
        eng.identity.add_forum("Samarbejdsforum", 2, "sector")
        eng.identity.add_user("bench", role="member", forums=["Samarbejdsforum"])
        eng.definitions.deploy([bpmn], user="bench")
    per_round = times(40)
    pending = {id(eng): [] for eng in engines}
    for eng in engines:
        for _ in range(per_round * rounds):
            inst = eng.runtime.start("bench", user="bench")
            pending[id(eng)].append(inst.tasks[0].id)
    samples: dict[int, list[float]] = {id(eng): [] for eng in engines}
    for _ in range(rounds):
        for eng in engines:
            tasks = [pending[id(eng)].pop() for _ in range(per_round)]
            began = time.perf_counter()
            for task_id in tasks:  # each completion runs the script task and the gateway after it
                eng.tasks.complete(task_id, "bench", {"titel": "x", "antal": 2})
            samples[id(eng)].append((time.perf_counter() - began) / per_round)
    iso, inp = statistics.median(samples[id(sandboxed)]), statistics.median(samples[id(in_process)])
    rows.append(("complete a task whose next steps are that script and a gateway: evaluator / in-process",
                 f"{iso * 1000:.2f} ms / {inp * 1000:.2f} ms (×{iso / inp:.2f})"))
    for eng in engines:
        eng.dispose()
    return rows
