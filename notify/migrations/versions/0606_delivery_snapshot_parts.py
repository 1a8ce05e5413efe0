"""delivery: the snapshot in parts

A broadcast's snapshot is taken in parts by resident id, each in its own transaction, so
sending starts while the rest is still being written. Runs from before were taken whole.

Revision ID: 0606_delivery_snapshot_parts
Revises: 0605_delivery_hot_updates
"""

import sqlalchemy as sa
from alembic import op

revision = "0606_delivery_snapshot_parts"
down_revision = "0605_delivery_hot_updates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("snapshot_parts", sa.SmallInteger(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("snapshot_cursor", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("snapshot_done", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_runs", schema=None) as batch_op:
        batch_op.drop_column("snapshot_done")
        batch_op.drop_column("snapshot_cursor")
        batch_op.drop_column("snapshot_parts")
