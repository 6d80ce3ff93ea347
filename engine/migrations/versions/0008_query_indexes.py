"""query indexes: inbox, instance list, dashboard; candidate rows know whether their task is open

Revision ID: 0008_query_indexes
Revises: 0007_api_tokens

Open tasks are a small part of human_tasks (closed ones stay as history), so partial indexes over
`status = 'open'` give the inbox its sort order and the dashboard its figures without reading closed
rows. task_candidates / task_candidate_users get `is_open`, kept equal to their task's
`status = 'open'` by triggers (whichever code or SQL changes the status), so the open tasks of a forum
or a candidate user are one index range: the inbox count reads only those. task_candidates also
get copies of the task's created_at and due_at (kept by the same triggers), so the dashboard's open
work per forum is read from one index.
"""
from alembic import op
import sqlalchemy as sa
import engine.models


revision = '0008_query_indexes'
down_revision = '0007_api_tokens'
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")
CANDIDATE_TABLES = ('task_candidates', 'task_candidate_users')

SQLITE_TRIGGERS = [
    # A task opened or closed, or its due date moved: its candidate rows follow.
    """CREATE TRIGGER tr_human_tasks_is_open AFTER UPDATE OF status, due_at ON human_tasks
       WHEN (OLD.status = 'open') IS NOT (NEW.status = 'open') OR OLD.due_at IS NOT NEW.due_at
       BEGIN
         UPDATE task_candidates SET is_open = (NEW.status = 'open'), due_at = NEW.due_at WHERE task_id = NEW.id;
         UPDATE task_candidate_users SET is_open = (NEW.status = 'open') WHERE task_id = NEW.id;
       END""",
    # A candidate row takes its task's state and times (whatever the inserting code gave).
    """CREATE TRIGGER tr_task_candidates_is_open AFTER INSERT ON task_candidates
       BEGIN
         UPDATE task_candidates SET
           is_open = (SELECT status = 'open' FROM human_tasks WHERE id = NEW.task_id),
           created_at = (SELECT created_at FROM human_tasks WHERE id = NEW.task_id),
           due_at = (SELECT due_at FROM human_tasks WHERE id = NEW.task_id)
         WHERE task_id = NEW.task_id AND forum = NEW.forum;
       END""",
    """CREATE TRIGGER tr_task_candidate_users_is_open AFTER INSERT ON task_candidate_users
       WHEN NEW.is_open IS NOT (SELECT status = 'open' FROM human_tasks WHERE id = NEW.task_id)
       BEGIN
         UPDATE task_candidate_users SET is_open = (SELECT status = 'open' FROM human_tasks WHERE id = NEW.task_id)
         WHERE task_id = NEW.task_id AND username = NEW.username;
       END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION almenflow_task_is_open() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         UPDATE task_candidates SET is_open = (NEW.status = 'open'), due_at = NEW.due_at WHERE task_id = NEW.id;
         UPDATE task_candidate_users SET is_open = (NEW.status = 'open') WHERE task_id = NEW.id;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER tr_human_tasks_is_open AFTER UPDATE OF status, due_at ON human_tasks FOR EACH ROW
       WHEN ((OLD.status = 'open') IS DISTINCT FROM (NEW.status = 'open') OR OLD.due_at IS DISTINCT FROM NEW.due_at)
       EXECUTE FUNCTION almenflow_task_is_open()""",
    """CREATE FUNCTION almenflow_candidate_is_open() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.is_open := coalesce((SELECT status = 'open' FROM human_tasks WHERE id = NEW.task_id), false);
         RETURN NEW;
       END $$""",
    """CREATE FUNCTION almenflow_candidate_copy() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         SELECT status = 'open', created_at, due_at INTO NEW.is_open, NEW.created_at, NEW.due_at
           FROM human_tasks WHERE id = NEW.task_id;
         NEW.is_open := coalesce(NEW.is_open, false);
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER tr_task_candidates_is_open BEFORE INSERT ON task_candidates FOR EACH ROW
       EXECUTE FUNCTION almenflow_candidate_copy()""",
    """CREATE TRIGGER tr_task_candidate_users_is_open BEFORE INSERT ON task_candidate_users FOR EACH ROW
       EXECUTE FUNCTION almenflow_candidate_is_open()""",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_index('ix_instances_definition_status_id', 'instances', ['definition_id', 'status', 'id'])
    op.create_index('ix_instances_status_ended', 'instances', ['status', 'ended_at'])
    op.create_index('ix_instances_started_by_id', 'instances', ['started_by', 'id'])
    op.create_index('ix_instances_id_definition_status', 'instances', ['id', 'definition_id', 'status'])
    op.create_index('ix_human_tasks_status_completed', 'human_tasks', ['status', 'completed_at'])
    for name, columns in (('ix_human_tasks_open_due', ['due_at', 'id']),
                          ('ix_human_tasks_open_created', ['created_at', 'id']),
                          ('ix_human_tasks_open_name', [sa.text('lower(name)'), 'id']),
                          ('ix_human_tasks_open_id', ['id', 'instance_id', 'created_at', 'due_at', 'status']),
                          ('ix_human_tasks_open_assignee', ['assignee', 'id'])):
        op.create_index(name, 'human_tasks', columns, sqlite_where=OPEN, postgresql_where=OPEN)
    for table, key, index in (('task_candidates', 'forum', 'ix_task_candidates_open_forum'),
                              ('task_candidate_users', 'username', 'ix_task_candidate_users_open_user')):
        # Plain ALTER TABLE ADD COLUMN on both databases (no table copy on SQLite).
        op.add_column(table, sa.Column('is_open', sa.Boolean(), nullable=False, server_default=sa.true()))
        op.execute(f"UPDATE {table} SET is_open = (SELECT human_tasks.status = 'open' FROM human_tasks "
                   f"WHERE human_tasks.id = {table}.task_id)")
        op.create_index(index, table, [key, 'task_id', 'is_open'], sqlite_where=sa.text('is_open = 1'),
                        postgresql_where=sa.text('is_open = true'))
    for column in ('created_at', 'due_at'):
        op.add_column('task_candidates', sa.Column(column, engine.models.UTCDateTime(timezone=True), nullable=True))
        op.execute(f"UPDATE task_candidates SET {column} = (SELECT human_tasks.{column} FROM human_tasks "
                   f"WHERE human_tasks.id = task_candidates.task_id)")
    op.create_index('ix_task_candidates_open_age', 'task_candidates', ['forum', 'created_at', 'due_at', 'is_open'],
                    sqlite_where=sa.text('is_open = 1'), postgresql_where=sa.text('is_open = true'))
    for statement in SQLITE_TRIGGERS if dialect == 'sqlite' else POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for trigger in ('tr_human_tasks_is_open', 'tr_task_candidates_is_open', 'tr_task_candidate_users_is_open'):
            op.execute(f'DROP TRIGGER IF EXISTS {trigger}')
    else:
        op.execute('DROP TRIGGER IF EXISTS tr_human_tasks_is_open ON human_tasks')
        op.execute('DROP TRIGGER IF EXISTS tr_task_candidates_is_open ON task_candidates')
        op.execute('DROP TRIGGER IF EXISTS tr_task_candidate_users_is_open ON task_candidate_users')
        op.execute('DROP FUNCTION IF EXISTS almenflow_task_is_open()')
        op.execute('DROP FUNCTION IF EXISTS almenflow_candidate_is_open()')
        op.execute('DROP FUNCTION IF EXISTS almenflow_candidate_copy()')
    op.drop_index('ix_task_candidates_open_age', table_name='task_candidates')
    op.drop_index('ix_task_candidate_users_open_user', table_name='task_candidate_users')
    op.drop_index('ix_task_candidates_open_forum', table_name='task_candidates')
    with op.batch_alter_table('task_candidate_users') as batch_op:
        batch_op.drop_column('is_open')
    with op.batch_alter_table('task_candidates') as batch_op:
        batch_op.drop_column('due_at')
        batch_op.drop_column('created_at')
        batch_op.drop_column('is_open')
    for name in ('ix_human_tasks_open_assignee', 'ix_human_tasks_open_id', 'ix_human_tasks_open_name',
                 'ix_human_tasks_open_created', 'ix_human_tasks_open_due', 'ix_human_tasks_status_completed'):
        op.drop_index(name, table_name='human_tasks')
    for name in ('ix_instances_id_definition_status', 'ix_instances_started_by_id', 'ix_instances_status_ended', 'ix_instances_definition_status_id'):
        op.drop_index(name, table_name='instances')
