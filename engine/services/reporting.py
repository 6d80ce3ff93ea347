"""Reporting: aggregate figures for the monitoring dashboard, counted by the database.

Every figure is one GROUP BY query over the projection tables (never workflow state). Week
buckets are ISO weeks in Copenhagen time; their bounds are computed here and handed to the
database as plain comparisons inside a CASE, so the same SQL runs on SQLite and PostgreSQL
(their date functions differ)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, func, literal_column, select, true

from ..assignment import COPENHAGEN
from ..errors import InvalidInputError
from ..models import HumanTask, Instance, TaskCandidate

if TYPE_CHECKING:
    from ..clock import Clock
    from ..uow import UnitOfWorkFactory

MAX_WEEKS = 104
# Age of an open task in whole days: (label, lower bound inclusive, upper bound exclusive or None).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 8), ("8-30", 8, 31), ("31-90", 31, 91), ("91+", 91, None))


@dataclass
class Week:
    """One ISO week: `start` is its Monday; `label` like 2027-W03."""

    year: int
    week: int
    start: date
    values: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    def to_dict(self) -> dict[str, Any]:
        return {"week": self.label, "year": self.year, "number": self.week, "start": self.start.isoformat(),
                **self.values}


@dataclass
class ForumTaskStats:
    forum: str | None
    open: int = 0
    overdue: int = 0
    ages: dict[str, int] = field(default_factory=lambda: {label: 0 for label, _, _ in AGE_BUCKETS})
    oldest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _local_midnight(day: date) -> datetime:
    """Midnight in Copenhagen as UTC: the columns hold UTC, and SQLite compares them as text."""
    return datetime(day.year, day.month, day.day, tzinfo=COPENHAGEN).astimezone(UTC)


class ReportingService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    # -- weeks ------------------------------------------------------------------------------
    def weeks(self, count: int = 12) -> list[Week]:
        """The last `count` ISO weeks in Copenhagen time, oldest first, the current week last."""
        if not 1 <= count <= MAX_WEEKS:
            raise InvalidInputError(f"weeks must be between 1 and {MAX_WEEKS}")
        today = self._clock.now().astimezone(COPENHAGEN).date()
        monday = today - timedelta(days=today.weekday())
        out = []
        for back in range(count - 1, -1, -1):
            start = monday - timedelta(weeks=back)
            year, week, _ = start.isocalendar()
            out.append(Week(year, week, start))
        return out

    def _count_per_week(self, session: Any, column: Any, weeks: list[Week], *conditions: Any) -> list[int]:
        """One count per week, each an index range count (index on the conditions' columns + `column`),
        all in one statement: cheaper than bucketing every row with a CASE and grouping."""
        bounds = [_local_midnight(w.start) for w in weeks] + [_local_midnight(weeks[-1].start + timedelta(weeks=1))]
        counts = [select(func.count()).where(column >= lo, column < hi, *conditions).scalar_subquery()
                  for lo, hi in zip(bounds, bounds[1:], strict=False)]
        return [int(n or 0) for n in session.execute(select(*counts)).one()]

    def instances_per_week(self, weeks: int = 12) -> list[Week]:
        """Instances started and completed in each of the last `weeks` ISO weeks."""
        buckets = self.weeks(weeks)
        with self._uow.read() as uow:
            session = uow.session
            started = self._count_per_week(session, Instance.started_at, buckets)
            completed = self._count_per_week(session, Instance.ended_at, buckets,
                                             Instance.status == literal_column("'completed'"))
        for w, s, c in zip(buckets, started, completed, strict=True):
            w.values = {"started": s, "completed": c}
        return buckets

    def tasks_completed_per_week(self, weeks: int = 12) -> list[Week]:
        """Human tasks completed in each of the last `weeks` ISO weeks (task throughput)."""
        buckets = self.weeks(weeks)
        with self._uow.read() as uow:
            session = uow.session
            completed = self._count_per_week(session, HumanTask.completed_at, buckets,
                                             HumanTask.status == literal_column("'completed'"))
        for w, c in zip(buckets, completed, strict=True):
            w.values = {"completed": c}
        return buckets

    # -- open tasks -------------------------------------------------------------------------
    def open_tasks_by_forum(self) -> list[ForumTaskStats]:
        """Open tasks per candidate forum (a task with two candidate forums counts in both, as in
        their inboxes): how many, how many overdue, how old (AGE_BUCKETS) and the oldest.
        Tasks without a forum are under forum None. Most overdue first, then by name.

        Read from the candidate rows' copies of the tasks' times (one partial index, models.py), and
        for tasks without a forum from human_tasks' (forum, status) index: never the task rows."""
        now = self._clock.now()
        today = now.astimezone(COPENHAGEN).date()
        stats: dict[str | None, ForumTaskStats] = {}
        queries: list[Select[Any]] = []
        for forum, created, due, where in (
                (TaskCandidate.forum, TaskCandidate.created_at, TaskCandidate.due_at,
                 (TaskCandidate.is_open == true(),)),
                (None, HumanTask.created_at, HumanTask.due_at,
                 (HumanTask.forum.is_(None), HumanTask.status == literal_column("'open'")))):
            buckets = []
            for _label, lo, hi in AGE_BUCKETS[1:]:  # the first bucket takes the rest (as before: else 0)
                # created on or before the day `lo` days ago (and after the day `hi` days ago)
                cond = created < _local_midnight(today - timedelta(days=lo - 1))
                if hi is not None:
                    cond = and_(cond, created >= _local_midnight(today - timedelta(days=hi - 1)))
                buckets.append(func.count().filter(cond))
            # One row per forum, in the index's order (no sort): counting with FILTER is cheaper than
            # grouping by a computed bucket. Tasks without a forum: one row (forum None).
            figures = (func.count(), func.count().filter(due < now), func.min(created), *buckets)
            queries.append(select(forum, *figures).where(*where).group_by(forum) if forum is not None
                           else select(literal_column("NULL"), *figures).where(*where))
        with self._uow.read() as uow:
            session = uow.session
            for q in queries:
                for name, total, late, oldest, *older in session.execute(q):
                    if not total:
                        continue
                    ages = [total - sum(older), *older]
                    s = stats.setdefault(name, ForumTaskStats(name))
                    s.open += total
                    s.overdue += int(late or 0)
                    for (label, _lo, _hi), n in zip(AGE_BUCKETS, ages, strict=True):
                        s.ages[label] += n
                    oldest_iso = _iso(oldest)
                    if oldest_iso and (s.oldest is None or oldest_iso < s.oldest):
                        s.oldest = oldest_iso
        return sorted(stats.values(), key=lambda s: (-s.overdue, s.forum is None, (s.forum or "").lower()))


def _iso(value: Any) -> str | None:
    """SQLite returns MIN() of a datetime column as text; PostgreSQL as a datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()
