"""APScheduler wake-ups. The database decides who does the work (see services/scheduler.py),
so any number of processes may run a worker against one PostgreSQL database.

Timers: the worker wakes exactly when the next timer is due. After each run it asks the database
for the next due time (two index look-ups) and moves its one-shot wake-up job there, bounded below
by MIN_DELAY_SECONDS (no busy loop) and above by the safety tick (`interval`, default 5 s): a timer
that another process created after the last run, due sooner than anything this worker knew of, is
picked up within one safety tick. A run fires every due timer in bounded batches (run_due), and when
it stopped at its limit the next due time is in the past, so the next run follows at once.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger("almenflow.worker")
# The safety tick: the longest the worker sleeps without looking at the database.
DEFAULT_INTERVAL_SECONDS = 5
MIN_DELAY_SECONDS = 0.05
# History cleanup (camunda:historyTimeToLive): once a day, a bounded number of instances per run.
CLEANUP_INTERVAL_HOURS = 24
CLEANUP_FIRST_DELAY_SECONDS = 300
CLEANUP_LIMIT = 10_000


class TimerWaker:
    """Runs due timers and keeps one one-shot APScheduler job set to the next due time.

    Each wake-up is a new job with its own id: APScheduler removes a one-shot job after starting it,
    so a job that re-added itself under the same id would be removed again by the scheduler."""

    JOB_PREFIX = "run_due_wake"

    def __init__(self, engine: Any, scheduler: Any, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self.engine, self.scheduler, self.interval = engine, scheduler, interval
        self._running = threading.Lock()
        self._scheduling = threading.Lock()
        self._ids = itertools.count(1)
        self.wake_id: str | None = None

    def next_delay(self) -> float:
        """Seconds until the next timer is due, within [MIN_DELAY_SECONDS, interval]."""
        due = self.engine.scheduler.next_due()
        if due is None:
            return self.interval
        seconds = (due - self.engine.clock.now()).total_seconds()
        return min(self.interval, max(MIN_DELAY_SECONDS, seconds))

    def run(self, job_id: str | None = None) -> None:
        if not self._running.acquire(blocking=False):  # the safety tick and a wake-up met
            return
        try:
            result = self.engine.scheduler.run_due()
            if result["fired"] or result["started"]:
                log.info("timers: fired on %s instance(s), started %s", result["fired"], result["started"])
        except Exception:  # a failing run must not stop the scheduler; the next wake-up tries again
            log.exception("run_due failed")
        finally:
            self._running.release()
            self.schedule(running=job_id)

    def wake_job(self) -> Any:
        return self.scheduler.get_job(self.wake_id) if self.wake_id else None

    def schedule(self, running: str | None = None) -> None:
        """Set the wake-up to the next due time (replacing a pending one; `running` is the job now
        running, which APScheduler removes itself)."""
        try:
            delay = self.next_delay()
        except Exception:  # the database is away: look again after the safety tick
            log.exception("next due time unknown")
            delay = self.interval
        with self._scheduling:
            old, self.wake_id = self.wake_id, f"{self.JOB_PREFIX}-{next(self._ids)}"
            self.scheduler.add_job(self.run, "date", run_date=datetime.now(UTC) + timedelta(seconds=delay),
                                   args=[self.wake_id], id=self.wake_id, misfire_grace_time=None)
            if old is not None and old != running:
                with contextlib.suppress(JobLookupError):
                    self.scheduler.remove_job(old)


def _cleanup(engine: Any) -> None:
    try:
        report = engine.cleanup.run(limit=CLEANUP_LIMIT)
        if report["count"] or report["more"]:
            log.info("history cleanup: removed %s instance(s)%s", report["count"],
                     ", more remain" if report["more"] else "")
    except Exception:  # as for timers: the next run tries again
        log.exception("history cleanup failed")


def _add_jobs(scheduler: Any, engine: Any, interval: float) -> TimerWaker:
    waker = TimerWaker(engine, scheduler, interval)
    # The safety tick, besides the wake-up job that run() keeps at the next due time.
    scheduler.add_job(waker.run, "interval", seconds=interval, id="run_due", max_instances=1,
                      coalesce=True)
    scheduler.add_job(_cleanup, "interval", hours=CLEANUP_INTERVAL_HOURS, args=[engine], id="history_cleanup",
                      max_instances=1, coalesce=True,
                      next_run_time=datetime.now(UTC) + timedelta(seconds=CLEANUP_FIRST_DELAY_SECONDS))
    return waker


def start_background(engine: Any, interval: float = DEFAULT_INTERVAL_SECONDS) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True)
    waker = _add_jobs(scheduler, engine, interval)
    scheduler.start()
    waker.schedule()
    return scheduler


def run_blocking(engine: Any, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
    scheduler = BlockingScheduler()
    waker = _add_jobs(scheduler, engine, interval)
    scheduler.add_job(waker.run, "date", run_date=datetime.now(UTC))  # at once; it sets the first wake-up
    scheduler.start()
