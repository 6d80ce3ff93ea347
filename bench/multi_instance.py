"""Row 6: a parallel multi-instance user task over many items: start the case, then complete every task.

AlmenFlow on SQLite through its services beside raw SpiffWorkflow 3.2 serialising and restoring at every
completion (the same XML, CamundaParser). Completions alternate in chunks between the two, so machine
load hits both alike. Each side stops when its completion time passes the cap; the rest is projected
from its last chunk's rate (and said so)."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from engine import Engine

from . import processes
from .common import Group, Sizes, deploy, new_engine
from .five_step import RawSpiff

USER, FORUM, KEY = "bench", "Sekretariat", "fanout"
CHUNKS = 20  # completions alternate in about this many chunks per side


class Contender:
    def __init__(self, name: str, items: int, cap: float) -> None:
        self.name, self.items, self.cap = name, items, cap
        self.start_seconds = 0.0
        self.complete_seconds = 0.0
        self.cpu = 0.0
        self.done = 0
        self.last_rate = 0.0  # seconds per completion in the last chunk

    @property
    def finished(self) -> bool:
        return self.done >= self.items or self.complete_seconds >= self.cap

    def chunk(self, n: int) -> None:
        n = min(n, self.items - self.done)
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            self.complete_one()
        took = time.perf_counter() - w0
        self.cpu += time.process_time() - c0
        self.complete_seconds += took
        self.done += n
        self.last_rate = took / n

    def begin(self) -> None:
        c0, w0 = time.process_time(), time.perf_counter()
        self.start()
        self.start_seconds = time.perf_counter() - w0
        self.cpu += time.process_time() - c0

    def start(self) -> None:
        raise NotImplementedError

    def complete_one(self) -> None:
        raise NotImplementedError

    def total(self) -> tuple[float, bool]:
        """Seconds for start + all completions, and whether the rest had to be projected."""
        rest = (self.items - self.done) * self.last_rate
        return self.start_seconds + self.complete_seconds + rest, self.done < self.items


class Ours(Contender):
    def __init__(self, eng: Engine, items: int, cap: float) -> None:
        super().__init__("AlmenFlow on SQLite", items, cap)
        self.eng = eng
        self.tasks: list[int] = []

    def start(self) -> None:
        inst = self.eng.runtime.start(KEY, data={"items": list(range(self.items))}, user=USER)
        self.tasks = [t.id for t in self.eng.tasks.query(instance_id=inst.id)]
        self.instance_id = inst.id
        assert len(self.tasks) == self.items, f"{len(self.tasks)} tasks open for {self.items} items"

    def complete_one(self) -> None:
        self.eng.tasks.complete(self.tasks.pop(), USER, {"ok": True})

    def check(self) -> None:
        if self.done >= self.items:
            status = self.eng.runtime.get(self.instance_id, history=False).status
            assert status == "completed", f"the case is {status} after every task was completed"


class Raw(Contender):
    def __init__(self, items: int, cap: float) -> None:
        super().__init__("raw SpiffWorkflow 3.2 (serialise/restore each step)", items, cap)
        self.raw = RawSpiff(processes.parallel_review(KEY, FORUM), KEY)
        self.state = ""

    def start(self) -> None:
        self.state = self.raw.start(items=list(range(self.items)))

    def complete_one(self) -> None:
        self.state, self.wf = self.raw.complete(self.state, {"ok": True})

    def check(self) -> None:
        if self.done >= self.items:
            assert self.wf.is_completed()


def run(group: Group, sizes: Sizes) -> None:
    n = sizes.mi_items
    with tempfile.TemporaryDirectory() as tmp:
        eng = new_engine(f"sqlite:///{tmp}/multi.sqlite")
        try:
            eng.identity.add_forum(FORUM)
            eng.identity.add_user(USER, forums=[FORUM])
            deploy(eng, f"{KEY}.bpmn", processes.parallel_review(KEY, FORUM))
            sides: list[Any] = [Ours(eng, n, sizes.mi_cap_seconds), Raw(n, sizes.mi_cap_seconds)]
            for side in sides:
                side.begin()
            step = max(1, n // CHUNKS)
            while not all(side.finished for side in sides):
                for side in sides:
                    if not side.finished:
                        side.chunk(step)
            for side in sides:
                side.check()
        finally:
            eng.dispose()
    ours, raw = sides
    for side in sides:
        total, projected = side.total()
        done = (f"all {n:,} completed in {side.complete_seconds:.1f} s" if not projected else
                f"{side.done:,} of {n:,} completed in the {side.cap:.0f} s cap, at {side.last_rate * 1000:.0f} ms "
                f"each at the end; the rest projected")
        is_ours = side is ours
        group.add(f"{side.name}: start with {n:,} items, then complete all",
                  f"{'≈ ' if projected else ''}{total:.1f} s total (start {side.start_seconds:.1f} s; {done}; "
                  f"CPU {side.cpu:.1f} s)",
                  f"{total / raw.total()[0]:.2f}× raw" if is_ours else "",
                  "< 30 s total" if is_ours else "", total < 30 if is_ours else None)
