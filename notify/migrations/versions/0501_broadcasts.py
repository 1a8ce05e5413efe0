"""broadcasts: staff test endpoints

Revision ID: 0501_broadcasts
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import notify.db

revision = "0501_broadcasts"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_test_endpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("created_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_test_endpoints_staff_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_test_endpoints")),
        sa.UniqueConstraint(
            "staff_id", "channel", "address", name="uq_staff_test_endpoints_address"
        ),
    )
    with op.batch_alter_table("staff_test_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_test_endpoints_staff_id"), ["staff_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_test_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_test_endpoints_staff_id"))
    op.drop_table("staff_test_endpoints")
