"""historyTimeToLive: the days a definition's ended instances are kept, and the index cleanup reads

Revision ID: 0004_history_ttl
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_history_ttl'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('definitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('history_ttl_days', sa.Integer(), nullable=True))
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.create_index('ix_instances_definition_ended', ['definition_id', 'ended_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index('ix_instances_definition_ended')
    with op.batch_alter_table('definitions', schema=None) as batch_op:
        batch_op.drop_column('history_ttl_days')
