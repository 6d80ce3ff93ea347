"""Row 5: does a step cost more when the case has a long history? A review loop (user task → exclusive
gateway → back to the user task) completed many times.

Young cases have completed the short history, one old case the long one. In each interleaved round one
young case (used once, so its history stays at the short length) and the old case complete one
iteration each: complete the task, then read the case's next open task, as the inbox would. The stored
state of both is measured with bench/common.py's state_bytes."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from engine import Engine

from . import processes
from .common import Group, Sizes, deploy, median, new_engine, state_bytes

USER, FORUM, KEY = "bench", "Sekretariat", "review"
PER_ROUND = 3


class LoopEnded(Exception):
    pass


def iterate(eng: Engine, case: dict[str, Any]) -> None:
    """Complete the case's open review task once (looping back) and find the next one."""
    eng.tasks.complete(case["task"], USER, {"again": True})
    open_tasks = eng.tasks.query(instance_id=case["id"])
    case["done"] += 1
    if not open_tasks:
        raise LoopEnded(f"the loop ended after {case['done']} iterations: the case is "
                        f"{eng.runtime.get(case['id'], history=False).status} and has no open task")
    case["task"] = open_tasks[0].id


def new_case(eng: Engine) -> dict[str, Any]:
    inst = eng.runtime.start(KEY, user=USER)
    return {"id": inst.id, "task": inst.tasks[0].id, "done": 0}


def run(group: Group, sizes: Sizes) -> None:
    short, long = sizes.loop_short, sizes.loop_long
    with tempfile.TemporaryDirectory() as tmp:
        eng = new_engine(f"sqlite:///{tmp}/history.sqlite")
        try:
            eng.identity.add_forum(FORUM)
            eng.identity.add_user(USER, forums=[FORUM])
            deploy(eng, f"{KEY}.bpmn", processes.review_loop(KEY, FORUM))
            young = [new_case(eng) for _ in range(sizes.loop_rounds * PER_ROUND)]
            for case in young:
                for _ in range(short):
                    iterate(eng, case)
            old = new_case(eng)
            t0 = time.perf_counter()
            checkpoints: list[tuple[int, float]] = []
            try:
                while old["done"] < long and time.perf_counter() - t0 < sizes.loop_cap_seconds:
                    began = time.perf_counter()
                    iterate(eng, old)
                    if old["done"] in (short, long // 4, long // 2, long - 1):
                        checkpoints.append((old["done"], time.perf_counter() - began))
            except LoopEnded as exc:
                group.add(f"one case looping {long:,} times", str(exc), "", "the loop runs on", False)
                return
            if old["done"] < long:  # measured where the build-up stopped, and said so
                group.add(f"build-up stopped at the {sizes.loop_cap_seconds:.0f} s cap",
                          f"{old['done']:,} of {long:,} iterations; the long history below is {old['done']:,}")
                long = old["done"]
            group.add(f"build-up: one case through {long:,} iterations", f"{time.perf_counter() - t0:.1f} s "
                      f"(one iteration at " + ", ".join(f"{n:,}: {s * 1000:.0f} ms" for n, s in checkpoints) + ")")

            wall: dict[str, list[float]] = {"young": [], "old": []}
            cpu: dict[str, list[float]] = {"young": [], "old": []}
            for r in range(sizes.loop_rounds):
                batch = young[r * PER_ROUND:(r + 1) * PER_ROUND]
                for label, cases in (("young", batch), ("old", [old] * PER_ROUND))[::1 if r % 2 else -1]:
                    for case in cases:
                        c0, w0 = time.process_time(), time.perf_counter()
                        iterate(eng, case)
                        wall[label].append(time.perf_counter() - w0)
                        cpu[label].append(time.process_time() - c0)
            y, o = median(wall["young"]), median(wall["old"])
            group.add(f"one iteration after {short:,} (complete + next task), median wall / CPU",
                      f"{y * 1000:.1f} ms / {median(cpu['young']) * 1000:.1f} ms")
            group.add(f"one iteration after {long:,}, median wall / CPU",
                      f"{o * 1000:.1f} ms / {median(cpu['old']) * 1000:.1f} ms", f"{o / y:.1f}× the {short:,} figure",
                      "≤ 3×", o / y <= 3)
            ys, os_ = state_bytes(eng, young[0]["id"]), state_bytes(eng, old["id"])
            group.add(f"stored state after {short + 1:,} iterations", f"{ys / 1024:.1f} KB")
            group.add(f"stored state after {old['done']:,} iterations", f"{os_ / 1024:.1f} KB",
                      f"{os_ / ys:.1f}× the {short + 1:,} figure", "bounded by what is open (≤ 2×)", os_ <= 2 * ys)
        finally:
            eng.dispose()
