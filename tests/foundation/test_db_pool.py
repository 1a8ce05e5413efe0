"""The PostgreSQL pool replaces a connection the server closed, without a ping per checkout."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from notify.db import Database
from notify.errors import ConfigError
from notify.settings import Settings


async def test_a_connection_the_server_closed_is_replaced_at_checkout(_pg_database: str) -> None:
    db = Database(Settings(database_url=_pg_database).effective_database_url, pool_size=1)
    try:
        async with db.transaction() as session:
            first = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = Database(Settings(database_url=_pg_database).effective_database_url)
        try:
            async with admin.transaction() as session:
                await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        finally:
            await admin.close()
        await asyncio.sleep(0.2)  # the event loop reads the server's goodbye

        async with db.transaction() as session:
            second = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first
    finally:
        await db.close()


@pytest.mark.parametrize("size", ["0", "201", "many"])
def test_a_pool_size_out_of_range_is_a_clear_config_error(size: str) -> None:
    with pytest.raises(ConfigError, match="database_pool_size"):
        Settings.from_env({"HUB_DATABASE_POOL_SIZE": size})
