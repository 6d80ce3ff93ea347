"""instances: the projection of the diagram state and the open tasks, so reads and steps need no history

Revision ID: 0009_case_projection
Revises: 0002_events
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_case_projection'
down_revision = '0002_events'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('completed_elements', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('active_elements', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('open_tasks', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('waits_key', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('waits_key')
        batch_op.drop_column('open_tasks')
        batch_op.drop_column('active_elements')
        batch_op.drop_column('completed_elements')
