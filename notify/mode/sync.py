"""Menu sync: make LINE hold exactly the configured menus, idempotently.

- A live menu whose tagged name carries the menu's key and current digest is reused; else a
  new one is created (request body, then the image on the data host; LINE cannot replace an
  image, so a changed image is a new menu).
- The hub's own stale menus (tagged, but not the current version) are deleted; menus without
  our tag are never touched. Users linked to a stale menu are first moved to its successor
  with one richmenu/batch request; if none is left this hour the stale menus are kept and
  the next sync deletes them.
- Aliases of tab menus are created or pointed at the current version; the default menu is
  the entry menu of the mode in force.
- It refuses to create anything that would bring the channel within `HEADROOM` of LINE's
  1,000-menu limit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from notify.db import utcnow
from notify.errors import Conflict, PermanentChannelError
from notify.mode.batches import BatchWindowSpent, run_batch
from notify.mode.menu_images import MenuImage, menu_image
from notify.mode.menus import (
    MenuCatalog,
    MenuDefinition,
    line_request_body,
    menu_digest,
    parse_menu_tag,
)
from notify.mode.runtime import ModeRuntime
from notify.mode.state import current_mode
from notify.mode.tables import ModeMenu

log = logging.getLogger(__name__)

LINE_MENU_LIMIT = 1000
HEADROOM = 100  # never let the channel hold more than 900 menus


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)  # menu keys
    reused: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # rich menu ids
    kept_stale: list[str] = field(default_factory=list)  # waiting for the batch window
    aliases: list[str] = field(default_factory=list)  # aliases created or re-pointed
    default: str | None = None  # the default menu id, when it was changed
    menus: dict[str, str] = field(default_factory=dict)  # key → rich menu id

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "reused": self.reused,
            "deleted": self.deleted,
            "kept_stale": self.kept_stale,
            "aliases": self.aliases,
            "default": self.default,
            "menus": self.menus,
        }


_RENDERED: dict[tuple[str, str], MenuImage] = {}  # generated images are deterministic


def _image(catalog: MenuCatalog, menu: MenuDefinition, font: Path | None) -> MenuImage:
    if menu.image.file:
        return menu_image(catalog, menu, font_path=font)
    key = (menu.model_dump_json(), str(font))
    if key not in _RENDERED:
        if len(_RENDERED) >= 64:
            _RENDERED.pop(next(iter(_RENDERED)))
        _RENDERED[key] = menu_image(catalog, menu, font_path=font)
    return _RENDERED[key]


async def render_images(rt: ModeRuntime, catalog: MenuCatalog) -> dict[str, MenuImage]:
    """Every menu's image (Pillow work runs in threads); InvalidInput if one breaks a rule."""
    font = rt.settings.rich_menu_font
    images = await asyncio.gather(
        *(asyncio.to_thread(_image, catalog, menu, font) for menu in catalog.menus)
    )
    return {menu.key: image for menu, image in zip(catalog.menus, images, strict=True)}


async def sync_menus(rt: ModeRuntime, catalog: MenuCatalog | None = None) -> SyncReport:
    catalog = catalog or rt.catalog()
    line = rt.require_line()
    images = await render_images(rt, catalog)  # before any LINE call: a bad image changes nothing
    digests = {m.key: menu_digest(m, images[m.key].data) for m in catalog.menus}
    live = await line.list_rich_menus()
    async with rt.db.sessionmaker() as session:
        recorded = {row.key: row for row in (await session.execute(select(ModeMenu))).scalars()}

    report = SyncReport()
    chosen: dict[str, str] = {}
    for menu in catalog.menus:
        found = await _reusable(rt, live, menu, digests[menu.key], recorded.get(menu.key))
        if found is not None:
            chosen[menu.key] = found
            report.reused.append(menu.key)
    to_create = [m for m in catalog.menus if m.key not in chosen]
    if len(live) + len(to_create) > LINE_MENU_LIMIT - HEADROOM:
        raise Conflict(
            f"LINE のリッチメニューが多すぎます（{len(live)} 件）/ the channel already holds "
            f"{len(live)} rich menus; creating {len(to_create)} more would come within "
            f"{HEADROOM} of LINE's limit of {LINE_MENU_LIMIT}"
        )
    for menu in to_create:
        image = images[menu.key]
        body = line_request_body(menu, digest=digests[menu.key])
        chosen[menu.key] = await line.create_rich_menu(body, image.data, image.content_type)
        report.created.append(menu.key)
    report.menus = dict(chosen)
    await _record(rt, catalog, chosen, digests)

    await _set_aliases(rt, catalog, chosen, live, report)
    mode = await current_mode(rt.db)
    entry_id = chosen[catalog.entry(mode).key]
    if await line.default_rich_menu_id() != entry_id:
        await line.set_default_rich_menu(entry_id)
        report.default = entry_id
    await _retire_stale(rt, catalog, chosen, live, mode, report)
    return report


async def _reusable(
    rt: ModeRuntime,
    live: list[dict[str, Any]],
    menu: MenuDefinition,
    digest: str,
    recorded: ModeMenu | None,
) -> str | None:
    """The live menu to keep for `menu`, if one matches its key and digest and has its image."""
    candidates = [
        str(m["richMenuId"])
        for m in live
        if parse_menu_tag(str(m.get("name", "")))
        == (
            menu.key,
            digest[:16],
        )
    ]
    if recorded is not None and recorded.rich_menu_id in candidates and recorded.digest == digest:
        return recorded.rich_menu_id
    for menu_id in candidates:
        # made by a sync that did not finish: keep it only if its image is there
        try:
            await rt.require_line().rich_menu_image(menu_id)
        except PermanentChannelError:
            continue
        return menu_id
    return None


async def _record(
    rt: ModeRuntime, catalog: MenuCatalog, chosen: dict[str, str], digests: dict[str, str]
) -> None:
    async with rt.db.transaction() as session:
        await session.execute(delete(ModeMenu).where(ModeMenu.key.not_in(list(chosen))))
        for menu in catalog.menus:
            row = await session.get(ModeMenu, menu.key)
            if row is None:
                row = ModeMenu(key=menu.key)
                session.add(row)
            row.mode = menu.mode
            row.rich_menu_id = chosen[menu.key]
            row.digest = digests[menu.key]
            row.alias = menu.alias
            row.synced_at = utcnow()


async def _set_aliases(
    rt: ModeRuntime,
    catalog: MenuCatalog,
    chosen: dict[str, str],
    live: list[dict[str, Any]],
    report: SyncReport,
) -> None:
    line = rt.require_line()
    aliases = await line.rich_menu_aliases()
    wanted = {m.alias: chosen[m.key] for m in catalog.menus if m.alias}
    for alias, menu_id in wanted.items():
        if alias not in aliases:
            await line.create_rich_menu_alias(alias, menu_id)
            report.aliases.append(alias)
        elif aliases[alias] != menu_id:
            await line.update_rich_menu_alias(alias, menu_id)
            report.aliases.append(alias)
    ours = {str(m["richMenuId"]) for m in live if parse_menu_tag(str(m.get("name", "")))}
    for alias, menu_id in aliases.items():
        if alias not in wanted and menu_id in ours:  # an alias of ours no longer configured
            await line.delete_rich_menu_alias(alias)


async def _retire_stale(
    rt: ModeRuntime,
    catalog: MenuCatalog,
    chosen: dict[str, str],
    live: list[dict[str, Any]],
    mode: str,
    report: SyncReport,
) -> None:
    keep = set(chosen.values())
    keys = {m.key for m in catalog.menus}
    stale: list[tuple[str, str]] = []  # (rich menu id, successor id)
    for menu in live:
        tag = parse_menu_tag(str(menu.get("name", "")))
        menu_id = str(menu["richMenuId"])
        if tag is None or menu_id in keep:
            continue
        successor = chosen[tag[0]] if tag[0] in keys else chosen[catalog.entry(mode).key]  # type: ignore[arg-type]
        stale.append((menu_id, successor))
    if not stale:
        return
    operations = [{"type": "link", "from": old, "to": new} for old, new in stale]
    try:
        phase = await run_batch(
            rt, operations, resume_key=f"sync-{uuid.uuid4().hex}", purpose="sync"
        )
    except BatchWindowSpent as exc:
        log.warning("menu sync: stale menus kept until the batch window frees: %s", exc)
        phase = "window"
    if phase != "succeeded":
        report.kept_stale = [old for old, _ in stale]
        return
    line = rt.require_line()
    for old, _ in stale:
        await line.delete_rich_menu(old)
        report.deleted.append(old)
