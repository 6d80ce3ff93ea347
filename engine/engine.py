"""The Engine: one object that wires the database, clock, script engine and services together."""

from __future__ import annotations

from .business_calendar import BusinessCalendar
from .clock import Clock, SystemClock
from .db import Database, database_url, upgrade
from .limits import Limits
from .projection import Projector
from .scripting import RestrictedScriptEngine
from .serialization import WorkflowCodec
from .services.cleanup import CleanupService
from .services.definitions import DefinitionService
from .services.history import HistoryService
from .services.identity import IdentityService
from .services.migration import MigrationService
from .services.reporting import ReportingService
from .services.runtime import RuntimeService
from .services.scheduler import SchedulerService
from .services.tasks import TaskService
from .services.tokens import TokenService
from .timer_starts import TimerStartSchedule
from .uow import UnitOfWorkFactory


class Engine:
    """Entry point for every caller (CLI, web, scheduler, tests).

    >>> eng = Engine.create("sqlite:///instance/almenflow.sqlite")
    >>> eng.init_db()
    >>> eng.definitions.deploy(["processes"], user="owner")
    """

    def __init__(self, db: Database, clock: Clock | None = None, limits: Limits | None = None,
                 cpu_seconds: float | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self.calendar = BusinessCalendar()
        self.limits = limits or Limits.from_env()
        if cpu_seconds is not None:
            self.limits = Limits.from_env(eval_cpu_seconds=cpu_seconds)
        self.uow = UnitOfWorkFactory(db, self.clock, self.limits)
        self.script_engine = RestrictedScriptEngine(self.clock, self.calendar, self.limits)
        self.codec = WorkflowCodec()
        self.projector = Projector(self.codec, self.clock, self.limits)
        self.timer_starts = TimerStartSchedule(self.script_engine, self.clock, self.limits)
        self.identity = IdentityService(self.uow, self.clock, self.calendar, db, self.limits)
        self.definitions = DefinitionService(self.uow, self.clock, self.limits, self.codec, self.timer_starts)
        self.runtime = RuntimeService(self.uow, self.clock, self.limits, db, self.codec, self.script_engine,
                                      self.projector, self.definitions)
        self.tasks = TaskService(self.uow, self.clock, self.limits, db, self.projector, self.runtime, self.identity,
                                 self.definitions)
        self.history = HistoryService(self.uow, self.clock, self.projector, self.runtime)
        self.scheduler = SchedulerService(self.uow, self.clock, self.limits, db, self.projector, self.script_engine,
                                          self.runtime, self.timer_starts)
        self.tokens = TokenService(self.uow, self.clock)
        self.reporting = ReportingService(self.uow, self.clock)
        self.cleanup = CleanupService(self.uow, self.clock, db)
        self.migration = MigrationService(self.uow, self.codec, self.projector, self.script_engine, self.runtime,
                                          self.definitions)
        self.projector.dispatcher = self.runtime.dispatch_thrown

    @classmethod
    def create(cls, url: str | None = None, clock: Clock | None = None, limits: Limits | None = None,
               cpu_seconds: float | None = None) -> Engine:
        limits = limits or Limits.from_env()
        return cls(Database(url or database_url(), busy_timeout=limits.lock_wait_seconds), clock, limits,
                   cpu_seconds)

    def init_db(self) -> None:
        """Bring the schema to the newest migration and load the business calendar."""
        upgrade(self.db.engine)
        self.identity.refresh_calendar()

    def dispose(self) -> None:
        self.db.engine.dispose()
