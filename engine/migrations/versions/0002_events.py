"""signal start events: the signal that starts a definition, the variable a start payload goes into

Revision ID: 0002_events
Revises: 0006_task_details
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_events'
down_revision = '0006_task_details'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('definitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('start_signal', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_definitions_start_signal'), ['start_signal'], unique=False)
        batch_op.add_column(sa.Column('start_variable', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('definitions', schema=None) as batch_op:
        batch_op.drop_column('start_variable')
        batch_op.drop_index(batch_op.f('ix_definitions_start_signal'))
        batch_op.drop_column('start_signal')
