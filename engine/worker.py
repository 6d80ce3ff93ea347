"""APScheduler wake-ups. The database decides who does the work (see services/scheduler.py),
so any number of processes may run a worker against one PostgreSQL database."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger("almenflow.worker")
DEFAULT_INTERVAL_SECONDS = 30
# History cleanup (camunda:historyTimeToLive): once a day, a bounded number of instances per run.
CLEANUP_INTERVAL_HOURS = 24
CLEANUP_FIRST_DELAY_SECONDS = 300
CLEANUP_LIMIT = 10_000


def _tick(engine: Any) -> None:
    try:
        result = engine.scheduler.run_due()
        if result["fired"] or result["started"]:
            log.info("timers: fired on %s instance(s), started %s", result["fired"], result["started"])
    except Exception:  # a failing tick must not stop the scheduler; the next tick tries again
        log.exception("run_due failed")


def _cleanup(engine: Any) -> None:
    try:
        report = engine.cleanup.run(limit=CLEANUP_LIMIT)
        if report["count"] or report["more"]:
            log.info("history cleanup: removed %s instance(s)%s", report["count"],
                     ", more remain" if report["more"] else "")
    except Exception:  # as for timers: the next run tries again
        log.exception("history cleanup failed")


def _add_jobs(scheduler: Any, engine: Any, interval: int) -> None:
    scheduler.add_job(_tick, "interval", seconds=interval, args=[engine], id="run_due",
                      max_instances=1, coalesce=True)
    scheduler.add_job(_cleanup, "interval", hours=CLEANUP_INTERVAL_HOURS, args=[engine], id="history_cleanup",
                      max_instances=1, coalesce=True,
                      next_run_time=datetime.now() + timedelta(seconds=CLEANUP_FIRST_DELAY_SECONDS))


def start_background(engine: Any, interval: int = DEFAULT_INTERVAL_SECONDS) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True)
    _add_jobs(scheduler, engine, interval)
    scheduler.start()
    return scheduler


def run_blocking(engine: Any, interval: int = DEFAULT_INTERVAL_SECONDS) -> None:
    scheduler = BlockingScheduler()
    _add_jobs(scheduler, engine, interval)
    _tick(engine)
    scheduler.start()
