"""SQLAlchemy tables. The schema itself is owned by the Alembic migrations in engine/migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored as UTC; SQLite drops tzinfo, so it is restored on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        from datetime import UTC

        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None


IdType = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Deployment(Base):
    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    deployed_by: Mapped[str | None] = mapped_column(String(100))
    deployed_at: Mapped[datetime]
    resources: Mapped[list[Resource]] = relationship(back_populates="deployment")


class Resource(Base):
    """A deployed BPMN/DMN file exactly as uploaded."""

    __tablename__ = "resources"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(10))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    decision_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    deployment: Mapped[Deployment] = relationship(back_populates="resources")


class Definition(Base):
    """One immutable version of one process."""

    __tablename__ = "definitions"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_definition_key_version"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"))
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    spec_json: Mapped[str] = mapped_column(Text)
    deployed_by: Mapped[str | None] = mapped_column(String(100))
    deployed_at: Mapped[datetime]
    start_timer: Mapped[str | None] = mapped_column(String(255))
    start_message: Mapped[str | None] = mapped_column(String(255), index=True)
    start_signal: Mapped[str | None] = mapped_column(String(255), index=True)
    # A message or signal start puts its payload in this one variable (else its variables become the case's).
    start_variable: Mapped[str | None] = mapped_column(String(255))
    next_start_at: Mapped[datetime | None] = mapped_column(index=True)
    start_form: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # camunda:historyTimeToLive in days: ended instances older than this are removed (services/cleanup.py).
    history_ttl_days: Mapped[int | None] = mapped_column(Integer)
    resource: Mapped[Resource] = relationship()


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_status_id", "status", "id"),
        Index("ix_instances_definition_id", "definition_id", "id"),
        Index("ix_instances_next_due", "next_due_at"),
        Index("ix_instances_started_at", "started_at"),
        Index("ix_instances_definition_ended", "definition_id", "ended_at"),
        # Instance list filtered by status and process (and its count); counts per version and status.
        Index("ix_instances_definition_status_id", "definition_id", "status", "id"),
        # Cases completed per week (the dashboard): a range of ended_at within one status.
        Index("ix_instances_status_ended", "status", "ended_at"),
        # A member's own cases (the API lists only those for non-administrators).
        Index("ix_instances_started_by_id", "started_by", "id"),
        # Looking cases up by id for a filter on their process or status (the inbox's process filter,
        # the case list's forum filter) without reading the wide rows (state_json).
        Index("ix_instances_id_definition_status", "id", "definition_id", "status"),
    )
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("definitions.id"))
    business_key: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(20))
    state_json: Mapped[str] = mapped_column(Text)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime]
    started_by: Mapped[str | None] = mapped_column(String(100))
    ended_at: Mapped[datetime | None]
    next_due_at: Mapped[datetime | None]
    incident_message: Mapped[str | None] = mapped_column(Text)
    incident_element_id: Mapped[str | None] = mapped_column(String(255))
    incident_at: Mapped[datetime | None]
    parent_instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    # Projections written with the state, so reads and the next step need neither history nor state:
    # diagram marking, {spiff task id: [element id, name]} of the open tasks, and a key of the waits rows.
    completed_elements: Mapped[list[str] | None] = mapped_column(JSON)
    active_elements: Mapped[list[str] | None] = mapped_column(JSON)
    open_tasks: Mapped[dict[str, list[str | None]] | None] = mapped_column(JSON)
    waits_key: Mapped[str | None] = mapped_column(String(64))
    definition: Mapped[Definition] = relationship()

    __mapper_args__ = {"version_id_col": version}


class HumanTask(Base):
    """Projection of a READY user/manual task: what inboxes query."""

    __tablename__ = "human_tasks"
    __table_args__ = (
        Index("ix_human_tasks_forum_status", "forum", "status"),
        Index("ix_human_tasks_assignee_status", "assignee", "status"),
        Index("ix_human_tasks_instance_status", "instance_id", "status"),
        # Tasks completed per week (the dashboard).
        Index("ix_human_tasks_status_completed", "status", "completed_at"),
    )
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"))
    spiff_task_id: Mapped[str] = mapped_column(String(36), unique=True)
    element_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    forum: Mapped[str | None] = mapped_column(String(255))
    candidate_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    assignee: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime | None]
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    documentation: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | completed | cancelled
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(100))
    follow_up_at: Mapped[datetime | None]
    priority: Mapped[int | None] = mapped_column(Integer)
    candidate_users: Mapped[list[str] | None] = mapped_column(JSON, default=list)
    instance: Mapped[Instance] = relationship()


# Open tasks are a small, hot part of human_tasks (closed ones are kept as history): partial indexes
# over them give the inbox its order without walking closed rows. Queries must say
# `status = 'open'` literally (engine/queries/tasks.py) for the planners to use them.
OPEN_TASK = text("status = 'open'")
Index("ix_human_tasks_open_due", HumanTask.due_at, HumanTask.id,
      sqlite_where=OPEN_TASK, postgresql_where=OPEN_TASK)
Index("ix_human_tasks_open_created", HumanTask.created_at, HumanTask.id,
      sqlite_where=OPEN_TASK, postgresql_where=OPEN_TASK)
Index("ix_human_tasks_open_name", func.lower(HumanTask.name), HumanTask.id,
      sqlite_where=OPEN_TASK, postgresql_where=OPEN_TASK)
# Covers what the dashboard's open-task figures read per task, so they never touch the wide rows
# (SQLite reads a column named in the query from the index only if the index holds it: hence status).
Index("ix_human_tasks_open_id", HumanTask.id, HumanTask.instance_id, HumanTask.created_at, HumanTask.due_at,
      HumanTask.status,
      sqlite_where=OPEN_TASK, postgresql_where=OPEN_TASK)
Index("ix_human_tasks_open_assignee", HumanTask.assignee, HumanTask.id,
      sqlite_where=OPEN_TASK, postgresql_where=OPEN_TASK)


class TaskCandidate(Base):
    """One row per candidate forum of a task, so every candidate forum's inbox finds it by index.

    `is_open` mirrors `human_tasks.status = 'open'`, `created_at` and `due_at` the task's: the database
    keeps them so (triggers made by migration 0008_query_indexes), whoever writes the task, so a forum's
    open tasks are one index range and the dashboard's figures per forum read that index only."""

    __tablename__ = "task_candidates"
    __table_args__ = (Index("ix_task_candidates_forum_task", "forum", "task_id"),
                      Index("ix_task_candidates_open_forum", "forum", "task_id", "is_open",
                            sqlite_where=text("is_open = 1"), postgresql_where=text("is_open = true")),
                      Index("ix_task_candidates_open_age", "forum", "created_at", "due_at", "is_open",
                            sqlite_where=text("is_open = 1"), postgresql_where=text("is_open = true")))
    task_id: Mapped[int] = mapped_column(ForeignKey("human_tasks.id", ondelete="CASCADE"), primary_key=True)
    forum: Mapped[str] = mapped_column(String(255), primary_key=True)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]


class TaskCandidateUser(Base):
    """One row per candidate user of a task (camunda:candidateUsers), for their inboxes (`is_open`: as
    for TaskCandidate)."""

    __tablename__ = "task_candidate_users"
    __table_args__ = (Index("ix_task_candidate_users_user_task", "username", "task_id"),
                      Index("ix_task_candidate_users_open_user", "username", "task_id", "is_open",
                            sqlite_where=text("is_open = 1"), postgresql_where=text("is_open = true")))
    task_id: Mapped[int] = mapped_column(ForeignKey("human_tasks.id", ondelete="CASCADE"), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Wait(Base):
    """Projection of what an instance waits for besides people: timers, messages and signals."""

    __tablename__ = "waits"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # timer | message | signal
    element_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255), index=True)
    due_at: Mapped[datetime | None] = mapped_column(index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_instance_time", "instance_id", "id"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instances.id"))
    type: Mapped[str] = mapped_column(String(40))
    time: Mapped[datetime] = mapped_column(index=True)
    user: Mapped[str | None] = mapped_column(String(100))
    element_id: Mapped[str | None] = mapped_column(String(255))
    task_id: Mapped[int | None] = mapped_column(IdType)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instances.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(IdType)
    user: Mapped[str] = mapped_column(String(100))
    time: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)


class Forum(Base):
    __tablename__ = "forums"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    level: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30), default="role")
    description: Mapped[str | None] = mapped_column(Text)
    meetings: Mapped[list[str]] = mapped_column(JSON, default=list)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(20), default="member")  # member | owner | admin
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class ApiToken(Base):
    """A personal API token: only the SHA-256 of the token is kept, so a database leak reveals none."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256: the lookup key
    hint: Mapped[str] = mapped_column(String(16))  # the token's first characters, to tell tokens apart
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    user: Mapped[User] = relationship()


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "forum_id", name="uq_membership"),)
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    forum_id: Mapped[int] = mapped_column(ForeignKey("forums.id"), index=True)


class HousingOrganisation(Base):
    __tablename__ = "housing_organisations"
    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    afdelinger: Mapped[int] = mapped_column(Integer, default=0)
    fictional: Mapped[bool] = mapped_column(Boolean, default=False)
