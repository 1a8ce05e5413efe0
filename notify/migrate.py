"""Schema by migrations (alembic), run programmatically at start-up and by the CLI.

Areas add their own revisions under notify/migrations/versions; several heads are allowed
(each area branches from the foundation), so we always upgrade to "heads".
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from notify.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database, target: str = "heads") -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), target))


async def downgrade(db: Database, target: str = "base") -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), target))


def autogenerate(db_url: str, message: str, rev_id: str, head: str = "heads") -> None:
    """Developer helper: write a new revision from the difference between models and db_url."""
    from sqlalchemy import create_engine

    engine = create_engine(db_url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg"))
    with engine.begin() as conn:
        command.revision(
            alembic_config(conn), message=message, autogenerate=True, rev_id=rev_id, head=head
        )
