"""human tasks: candidate users, follow-up date and priority

Revision ID: 0006_task_details
Revises: 0004_history_ttl
"""
from alembic import op
import sqlalchemy as sa
import engine.models


revision = '0006_task_details'
down_revision = '0004_history_ttl'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follow_up_at', engine.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('priority', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('candidate_users', sa.JSON(), nullable=True))
    op.create_table('task_candidate_users',
    sa.Column('task_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['human_tasks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('task_id', 'username')
    )
    with op.batch_alter_table('task_candidate_users', schema=None) as batch_op:
        batch_op.create_index('ix_task_candidate_users_user_task', ['username', 'task_id'], unique=False)


def downgrade() -> None:
    op.drop_table('task_candidate_users')
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_column('candidate_users')
        batch_op.drop_column('priority')
        batch_op.drop_column('follow_up_at')
