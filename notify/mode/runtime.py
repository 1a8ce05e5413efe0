"""What the mode area's code shares: settings, city, database, queue, the LINE admin client,
the FCM channel and the menu catalog. Built once per process (web app, worker, CLI, bench)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from notify.city import CityConfig
from notify.db import Database
from notify.errors import ConfigError
from notify.jma.config import CityAreas, JmaConfig, Rule, load_jma_config
from notify.mode.menus import MenuCatalog, load_menu_catalog
from notify.settings import REPO_ROOT, Settings

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from channels.fcm import FcmChannel
    from channels.line_admin import LineAdmin


def menu_dir(settings: Settings) -> Path:
    """settings.rich_menu_dir, else config/richmenus/<stem of the city config file>."""
    if settings.rich_menu_dir is not None:
        return settings.rich_menu_dir
    return REPO_ROOT / "config" / "richmenus" / settings.city_config.stem


@cache
def _catalog(directory: Path, mtimes: tuple[float, ...]) -> MenuCatalog:
    return load_menu_catalog(directory)


def load_catalog(settings: Settings) -> MenuCatalog:
    """The city's menus; reloaded when a file in the folder changes."""
    directory = menu_dir(settings)
    mtimes = tuple(p.stat().st_mtime for p in sorted(directory.glob("*")) if p.is_file())
    return _catalog(directory, mtimes)


@cache
def _jma(path: Path) -> JmaConfig:
    return load_jma_config(path)


def jma_rules(settings: Settings, city: CityConfig) -> tuple[CityAreas, tuple[Rule, ...]]:
    config = _jma(settings.jma_config)
    areas = config.city(city.city.code, ward_codes=city.ward_codes)
    return areas, config.rules_for(city.city.code)


def build_line(settings: Settings) -> LineAdmin | None:
    if not settings.line_channel_access_token:
        return None
    from channels.line_admin import LineAdmin

    return LineAdmin(
        api_url=settings.line_api_url,
        data_url=settings.line_data_url,
        channel_access_token=settings.line_channel_access_token,
    )


def build_fcm(settings: Settings) -> FcmChannel | None:
    if settings.fcm_credentials_file is None or not settings.fcm_project_id:
        return None
    from channels.fcm import FcmChannel

    return FcmChannel(
        api_url=settings.fcm_api_url,
        project_id=settings.fcm_project_id,
        credentials_file=settings.fcm_credentials_file,
    )


@dataclass
class ModeRuntime:
    settings: Settings
    city: CityConfig
    db: Database
    redis: ArqRedis | None = None
    line: LineAdmin | None = None
    fcm: FcmChannel | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls, settings: Settings, city: CityConfig, db: Database, redis: ArqRedis | None = None
    ) -> ModeRuntime:
        return cls(settings, city, db, redis, build_line(settings), build_fcm(settings))

    def catalog(self) -> MenuCatalog:
        return load_catalog(self.settings)

    def require_line(self) -> LineAdmin:
        if self.line is None:
            raise ConfigError(
                "LINE のチャネルアクセストークンが未設定です / LINE is not configured "
                "(HUB_LINE_CHANNEL_ACCESS_TOKEN)"
            )
        return self.line

    async def close(self) -> None:
        if self.line is not None:
            await self.line.close()
        if self.fcm is not None:
            await self.fcm.close()
