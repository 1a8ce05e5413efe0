"""delivery: rows that change in place (HOT updates)

No index of `deliveries` names `status` any more (the open-rows index becomes "not in a
batch yet"), and its pages keep two thirds of their room free, so the queued → sent update of a big
send rewrites each row in place on PostgreSQL. Pages written before this keep their fill;
new sends get the room.

Revision ID: 0605_delivery_hot_updates
Revises: 0604_delivery_no_resident_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0605_delivery_hot_updates"
down_revision = "0604_delivery_no_resident_index"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('pending', 'held')")
UNBATCHED = sa.text("batch_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_open", postgresql_where=OPEN, sqlite_where=OPEN)
        batch_op.drop_index("ix_deliveries_broadcast_channel_status")
        batch_op.create_index(
            "ix_deliveries_unbatched",
            ["broadcast_id", "id"],
            unique=False,
            postgresql_where=UNBATCHED,
            sqlite_where=UNBATCHED,
        )
        batch_op.create_index("ix_deliveries_broadcast_channel", ["broadcast_id", "channel"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries SET (fillfactor = 35)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_broadcast_channel")
        batch_op.drop_index(
            "ix_deliveries_unbatched", postgresql_where=UNBATCHED, sqlite_where=UNBATCHED
        )
        batch_op.create_index(
            "ix_deliveries_broadcast_channel_status", ["broadcast_id", "channel", "status"]
        )
        batch_op.create_index(
            "ix_deliveries_open",
            ["broadcast_id", "id"],
            unique=False,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        )
