"""APScheduler wake-ups. The database decides who does the work (see services/scheduler.py),
so any number of processes may run a worker against one PostgreSQL database."""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger("almenflow.worker")
DEFAULT_INTERVAL_SECONDS = 30


def _tick(engine: Any) -> None:
    try:
        result = engine.scheduler.run_due()
        if result["fired"] or result["started"]:
            log.info("timers: fired on %s instance(s), started %s", result["fired"], result["started"])
    except Exception:  # a failing tick must not stop the scheduler; the next tick tries again
        log.exception("run_due failed")


def start_background(engine: Any, interval: int = DEFAULT_INTERVAL_SECONDS) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(_tick, "interval", seconds=interval, args=[engine], id="run_due",
                      max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler


def run_blocking(engine: Any, interval: int = DEFAULT_INTERVAL_SECONDS) -> None:
    scheduler = BlockingScheduler()
    scheduler.add_job(_tick, "interval", seconds=interval, args=[engine], id="run_due",
                      max_instances=1, coalesce=True)
    _tick(engine)
    scheduler.start()
