"""Alembic environment. Run through `notify.migrate` (or `python -m notify migrate`)."""

from __future__ import annotations

from alembic import context

from notify.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through notify.migrate, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch ALTER TABLE
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
