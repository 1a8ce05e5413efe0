"""aiohttp entry point: `create_app(settings)` and `python server.py`.

With nothing configured the server uses SQLite under the data dir and starts a private Redis;
`python -m notify up --demo` is the one command that starts everything (see README.md).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web
from arq import create_pool

import notify.console
from notify.broadcasts import api as broadcasts_api
from notify.city import CityConfig, load_city
from notify.cli_errors import run_command
from notify.db import Database
from notify.delivery import api as delivery_api
from notify.migrate import upgrade
from notify.mode import api as mode_api
from notify.queue_redis import queue_redis_settings
from notify.registry import api as registry_api
from notify.settings import Settings
from notify.stats import api as stats_api
from notify.web import staff_api, system_api
from notify.web.api import ApiRoutes
from notify.web.errors import error_middleware
from notify.web.keys import AREAS, CITY, DB, REDIS, SETTINGS
from notify.web.openapi import OPENAPI_DOC, build_openapi
from notify.web.serve import serve

API_TABLES: Sequence[ApiRoutes] = (
    system_api.routes,
    registry_api.routes,
    broadcasts_api.routes,
    delivery_api.routes,
    mode_api.routes,
    stats_api.routes,
    staff_api.routes,
)

# Areas that need more than JSON routes (HTML pages, static files, background tasks) add a
# `setup(app)` function here.
AREA_SETUPS: Sequence[Callable[[web.Application], None]] = (
    notify.console.setup,
    registry_api.setup,
)


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    db = Database.from_settings(app[SETTINGS])
    await upgrade(db)
    app[DB] = db
    yield
    await db.close()


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    url = app[SETTINGS].redis_url
    if not url:
        raise RuntimeError("redis_url must be set (python -m notify up starts a private Redis)")
    redis = await create_pool(queue_redis_settings(url))
    app[REDIS] = redis
    yield
    await redis.aclose()


def create_app(settings: Settings, city: CityConfig | None = None) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[CITY] = city or load_city(settings.city_config)
    app[AREAS] = {}
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_redis_ctx)
    setup_routes(app)
    for setup in AREA_SETUPS:
        setup(app)
    return app


async def _front_door(request: web.Request) -> web.StreamResponse:
    """The address the start-up banner prints: staff land on the console (its sign-in)."""
    raise web.HTTPFound("/console/")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", _front_door)
    for table in API_TABLES:
        table.register(app)
    app[OPENAPI_DOC] = build_openapi(
        API_TABLES, title="Citizen notification hub API / 市民通知ハブ API", version="1"
    )


def main() -> None:
    from notify.embedded_redis import EmbeddedRedis

    settings = Settings.from_env(os.environ)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        settings = settings.model_copy(update={"redis_url": embedded.start()})
    try:
        serve(create_app(settings), host=settings.host, port=settings.port)
    finally:
        if embedded:
            embedded.stop()


if __name__ == "__main__":
    sys.exit(run_command(main))
