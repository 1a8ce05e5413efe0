"""Typed application keys: resources opened in cleanup_ctx and shared by handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from notify.city import CityConfig
    from notify.db import Database
    from notify.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CITY: web.AppKey[CityConfig] = web.AppKey("city")
DB: web.AppKey[Database] = web.AppKey("db")
REDIS: web.AppKey[ArqRedis] = web.AppKey("redis")
# Extra per-area state (clients, caches) keyed by area name.
AREAS: web.AppKey[dict[str, Any]] = web.AppKey("areas")
