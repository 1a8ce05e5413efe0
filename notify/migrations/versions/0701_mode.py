"""mode: menus, switches, proposals, JMA telegrams

Revision ID: 0701_mode
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import notify.db

revision = "0701_mode"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mode_jma_telegrams",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("received_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data_type", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("info_type", sa.String(length=8), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("report_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason_ja", sa.Text(), nullable=False),
        sa.Column("reason_en", sa.Text(), nullable=False),
        sa.Column("ward_codes", sa.JSON(), nullable=False),
        sa.Column(
            "proposal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("switch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "broadcast_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mode_jma_telegrams")),
        sa.UniqueConstraint("sha256", name=op.f("uq_mode_jma_telegrams_sha256")),
    )
    with op.batch_alter_table("mode_jma_telegrams", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mode_jma_telegrams_event_key"), ["event_key"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_mode_jma_telegrams_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "mode_line_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("resume_key", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("switch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("operations", sa.JSON(), nullable=False),
        sa.Column("phase", sa.String(length=12), nullable=False),
        sa.Column("sent_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", notify.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mode_line_batches")),
    )
    with op.batch_alter_table("mode_line_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mode_line_batches_resume_key"), ["resume_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_mode_line_batches_sent_at"), ["sent_at"], unique=False)

    op.create_table(
        "mode_menus",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("rich_menu_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=32), nullable=True),
        sa.Column("synced_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_mode_menus")),
    )
    op.create_table(
        "mode_proposals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("reason_ja", sa.Text(), nullable=False),
        sa.Column("reason_en", sa.Text(), nullable=False),
        sa.Column("ward_codes", sa.JSON(), nullable=False),
        sa.Column("template_key", sa.String(length=64), nullable=True),
        sa.Column("template_params", sa.JSON(), nullable=False),
        sa.Column("rule_keys", sa.JSON(), nullable=False),
        sa.Column("created_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", notify.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("switch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "broadcast_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mode_proposals")),
    )
    with op.batch_alter_table("mode_proposals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mode_proposals_status_event", ["status", "event_key"], unique=False
        )

    op.create_table(
        "mode_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("since", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("actor_label", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("switch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mode_state")),
    )
    op.create_table(
        "mode_switches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("target_mode", sa.String(length=8), nullable=False),
        sa.Column("from_mode", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("actor_label", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("relink", sa.JSON(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_at", notify.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("default_set_at", notify.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("relink_done_at", notify.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", notify.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mode_switches")),
    )
    with op.batch_alter_table("mode_switches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mode_switches_status"), ["status"], unique=False)

    op.create_table(
        "mode_link_snapshots",
        sa.Column(
            "switch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line_user_id", sa.String(length=64), nullable=False),
        sa.Column("menu_key", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["switch_id"],
            ["mode_switches.id"],
            name=op.f("fk_mode_link_snapshots_switch_id_mode_switches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("switch_id", "line_user_id", name=op.f("pk_mode_link_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("mode_link_snapshots")
    with op.batch_alter_table("mode_switches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mode_switches_status"))

    op.drop_table("mode_switches")
    op.drop_table("mode_state")
    with op.batch_alter_table("mode_proposals", schema=None) as batch_op:
        batch_op.drop_index("ix_mode_proposals_status_event")

    op.drop_table("mode_proposals")
    op.drop_table("mode_menus")
    with op.batch_alter_table("mode_line_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mode_line_batches_sent_at"))
        batch_op.drop_index(batch_op.f("ix_mode_line_batches_resume_key"))

    op.drop_table("mode_line_batches")
    with op.batch_alter_table("mode_jma_telegrams", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mode_jma_telegrams_received_at"))
        batch_op.drop_index(batch_op.f("ix_mode_jma_telegrams_event_key"))

    op.drop_table("mode_jma_telegrams")
