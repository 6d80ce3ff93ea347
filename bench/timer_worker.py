"""A real timer worker (engine.worker.run_blocking, what `almenflow worker` runs) whose clock is shifted so
that the benchmark's timers fall due at a real moment the benchmark chooses.

    python -m bench.timer_worker URL DUE_ISO [INTERVAL]

Prints "ready TICK" once the engine is up, then reads the real Unix time at which DUE_ISO (engine time) is to
be "now" from stdin, and runs the worker until it is killed. A worker that ticks at an interval starts
ticking half an interval before the timers fall due: the average wait of a worker that has been running
for a while (a worker that wakes at the next due time does not care)."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime, timedelta

from engine import Clock, Engine


class ShiftedClock(Clock):
    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def main() -> None:
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: maximum number of running instances"
    url, due = sys.argv[1], datetime.fromisoformat(sys.argv[2])
    interval = int(sys.argv[3]) if len(sys.argv) > 3 else None
    clock = ShiftedClock(timedelta(0))
    eng = Engine.create(url, clock=clock)

    from engine import worker

    tick = interval or getattr(worker, "DEFAULT_INTERVAL_SECONDS", 2)
    print(f"ready {tick}", flush=True)
    real_due = float(sys.stdin.readline())
    clock.offset = due - datetime.fromtimestamp(real_due, UTC)
    time.sleep(max(0.0, real_due - tick / 2 - time.time()))
    if interval is None:
        worker.run_blocking(eng)
    else:
        worker.run_blocking(eng, interval)


if __name__ == "__main__":
    main()
