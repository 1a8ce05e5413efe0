"""Shared fixtures: real PostgreSQL and SQLite databases, real Redis, the hub app, staff.

Every test that takes `database` (or anything built on it) runs twice, once on SQLite and once
on PostgreSQL. Each backend is migrated once per session; tests get a clean copy (SQLite: a
copy of the migrated file; PostgreSQL: all tables truncated).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from notify.db import Database
from notify.embedded_redis import EmbeddedRedis
from notify.migrate import upgrade
from notify.settings import REPO_ROOT, Settings
from notify.tables import metadata

pytest_plugins = ["tests.plugins.sandboxes"]

PG_ADMIN_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_HOST_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379")
IN_CI = os.environ.get("CI") == "true"
# The test city's staff: one user per role, plus a second PR user, by login → roles.
STAFF_ROLES = {
    "pr": ["pr"],
    "pr2": ["pr"],
    "approver": ["approver"],
    "disaster": ["disaster"],
    "analyst": ["analyst"],
    "admin": ["admin"],
}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    path = Path(os.environ.get("HUB_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "reference"))
    if not path.is_dir():
        pytest.fail(f"reference material not found at {path} (set HUB_REFERENCE_DIR)")
    return path


# --- databases ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "hub.db"
    db = Database(f"sqlite+aiosqlite:///{path}")

    async def migrate() -> None:
        await upgrade(db)
        await db.close()

    asyncio.run(migrate())
    return path


@pytest.fixture(scope="session")
def _pg_database(request: pytest.FixtureRequest) -> Iterator[str]:
    if not _reachable("127.0.0.1", 5432) and not PG_ADMIN_URL.startswith("postgresql://postgres@/"):
        if IN_CI:
            pytest.fail("PostgreSQL is not running on 127.0.0.1:5432")
        pytest.skip("PostgreSQL not reachable")
    # One database per test session (pid), so concurrent runs on one machine never collide.
    with migrated_pg_database(f"hub_test_{os.getpid()}") as url:
        yield url


def require_postgres() -> None:
    """PostgreSQL on 127.0.0.1:5432, or this test is skipped (in CI: failed)."""
    if not _reachable("127.0.0.1", 5432):
        if IN_CI:
            pytest.fail("PostgreSQL is not running on 127.0.0.1:5432")
        pytest.skip("PostgreSQL not reachable")


@contextmanager
def migrated_pg_database(name: str) -> Iterator[str]:
    """A new PostgreSQL database `name` next to PG_ADMIN_URL's (one left by a killed run is
    dropped first), migrated; yields its URL and drops it afterwards."""
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"

    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'

    async def admin(*statements: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def create() -> None:
        await admin(drop, f'CREATE DATABASE "{name}"')
        db = Database(Settings(database_url=url).effective_database_url)
        await upgrade(db)
        await db.close()

    asyncio.run(create())
    yield url
    asyncio.run(admin(drop))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "hub.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("_pg_database")
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)

    async def truncate() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    asyncio.run(truncate())
    return url


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    db = Database(Settings(database_url=db_url).effective_database_url)
    yield db
    await db.close()


# --- redis ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _redis_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    host, port = "127.0.0.1", 6379
    if REDIS_HOST_URL == "redis://127.0.0.1:6379" and _reachable(host, port):
        yield REDIS_HOST_URL
        return
    if REDIS_HOST_URL != "redis://127.0.0.1:6379":
        yield REDIS_HOST_URL
        return
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield embedded.start().rsplit("/", 1)[0]
    embedded.stop()


@pytest.fixture(scope="session")
def _redis_db(_redis_base: str) -> Iterator[int]:
    """A Redis database number no other test process on this machine holds (a file lock per
    number): tests flush their database, so two runs side by side must never share one."""
    locks = Path(tempfile.gettempdir()) / "hub-test-redis-locks"
    locks.mkdir(exist_ok=True)
    base = _redis_base.replace("/", "_").replace(":", "_")
    for number in range(1, 16):
        handle = (locks / f"{base}-{number}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield number
        finally:
            handle.close()  # closing releases the lock
        return
    pytest.fail("all 15 test Redis databases are held by other test runs")


@pytest.fixture
async def redis_url(_redis_base: str, _redis_db: int) -> AsyncIterator[str]:
    """A Redis database of this test process's own, flushed before each test."""
    url = f"{_redis_base}/{_redis_db}"
    client = aioredis.from_url(url)
    await client.flushdb()
    await client.aclose()
    yield url


# --- the hub --------------------------------------------------------------------------------


@pytest.fixture
def settings(db_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        redis_url=redis_url,
        secret_key="test-secret-key-0123456789",
        public_url="http://hub.test",
    )


ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Start the real hub app on 127.0.0.1 with the given settings; returns a client."""
    from server import create_app

    clients: list[TestClient[Any, Any]] = []

    async def factory(settings: Settings, **kwargs: Any) -> TestClient[Any, Any]:
        client = TestClient(TestServer(create_app(settings, **kwargs)))
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: ClientFactory, settings: Settings) -> TestClient[Any, Any]:
    return await make_client(settings)


@pytest.fixture
async def staff_headers(client: TestClient[Any, Any]) -> dict[str, dict[str, str]]:
    """One staff user per role (plus a second PR user and an approver), by name → auth headers."""
    from notify.staff import create_staff, issue_token
    from notify.web.keys import DB

    db: Database = client.server.app[DB]
    headers: dict[str, dict[str, str]] = {}
    async with db.transaction() as session:
        for login, roles in STAFF_ROLES.items():
            user = await create_staff(session, login, f"{login} 職員", roles)
            token = await issue_token(session, user)
            headers[login] = {"Authorization": f"Bearer {token}"}
    return headers


async def count_rows(db: Database, table: str) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one())
