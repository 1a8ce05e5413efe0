"""stats: opens, bounces, LINE units and followers

Revision ID: 0801_stats
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import notify.db

revision = "0801_stats"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_line_followers",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("followers", sa.BigInteger(), nullable=True),
        sa.Column("targeted_reaches", sa.BigInteger(), nullable=True),
        sa.Column("blocks", sa.BigInteger(), nullable=True),
        sa.Column("fetched_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_stats_line_followers")),
    )
    op.create_table(
        "stats_email_bounces",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "broadcast_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("bounced_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_stats_email_bounces_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_email_bounces")),
        sa.UniqueConstraint("broadcast_id", "endpoint_id", name="uq_stats_email_bounces_pair"),
    )
    op.create_table(
        "stats_line_units",
        sa.Column("name", sa.String(length=30), nullable=False),
        sa.Column(
            "broadcast_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("ward_code", sa.String(length=6), nullable=True),
        sa.Column("month", sa.String(length=6), nullable=False),
        sa.Column("created_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("polled_at", notify.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("unique_impression", sa.BigInteger(), nullable=True),
        sa.Column("unique_click", sa.BigInteger(), nullable=True),
        sa.Column("withheld", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_stats_line_units_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stats_line_units")),
    )
    with op.batch_alter_table("stats_line_units", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stats_line_units_broadcast_id"), ["broadcast_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_stats_line_units_polled_at"), ["polled_at"], unique=False
        )

    op.create_table(
        "stats_opens",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "broadcast_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("first_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_stats_opens_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_opens")),
        sa.UniqueConstraint(
            "broadcast_id", "endpoint_id", "channel", "kind", name="uq_stats_opens_event"
        ),
    )


def downgrade() -> None:
    op.drop_table("stats_opens")
    with op.batch_alter_table("stats_line_units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_line_units_polled_at"))
        batch_op.drop_index(batch_op.f("ix_stats_line_units_broadcast_id"))

    op.drop_table("stats_line_units")
    op.drop_table("stats_email_bounces")
    op.drop_table("stats_line_followers")
