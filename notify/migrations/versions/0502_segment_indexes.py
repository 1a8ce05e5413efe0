"""segments: covering indexes for child age and ward/language segments

Revision ID: 0502_segment_indexes
Revises: 0501_broadcasts
"""

from alembic import op

revision = "0502_segment_indexes"
down_revision = "0501_broadcasts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_children_month_resident", "children", ["birth_month_index", "resident_id"])
    op.create_index(
        "ix_residents_ward_language",
        "residents",
        ["ward_code", "language"],
        postgresql_include=["status", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_residents_ward_language", table_name="residents")
    op.drop_index("ix_children_month_resident", table_name="children")
