"""Rich menus as configuration: config/richmenus/<city>/*.yaml → typed menus → LINE request bodies.

Each file is one menu of one mode (normal / disaster). A mode has one entry menu (the default
rich menu) and may have more tabs reached through aliases (`richmenuswitch` actions). Each
menu names its counterpart in the other mode: where a user linked to it goes on a switch.

LINE cannot replace a menu's image, so a sync compares `menu_digest` (definition + image
bytes): equal → reuse the live menu, different → create a new one. The digest is embedded in
the menu's LINE name (`tagged_name`), which also marks the menus this hub owns.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from notify.errors import ConfigError, NotFound

Mode = Literal["normal", "disaster"]
MODES: tuple[Mode, ...] = ("normal", "disaster")
_KEY = r"^[a-z][a-z0-9_-]{0,31}$"
_ALIAS = r"^[a-z0-9_-]{1,32}$"  # LINE's richMenuAliasId pattern
_COLOUR = r"^#[0-9A-Fa-f]{6}$"
_TAG = re.compile(r" #hub:(?P<key>[a-z][a-z0-9_-]{0,31}):(?P<digest>[0-9a-f]{16})$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Size(_Frozen):
    """LINE: width 800–2500 px, height ≥ 250 px, width/height ≥ 1.45."""

    width: int = Field(ge=800, le=2500)
    height: int = Field(ge=250)

    @model_validator(mode="after")
    def _ratio(self) -> Size:
        if self.width / self.height < 1.45:
            raise ValueError(f"size {self.width}x{self.height}: width/height must be ≥ 1.45")
        return self


class Bounds(_Frozen):
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(ge=1)
    height: int = Field(ge=1)

    def overlaps(self, other: Bounds) -> bool:
        return (
            self.x < other.x + other.width
            and other.x < self.x + self.width
            and self.y < other.y + other.height
            and other.y < self.y + self.height
        )


class UriAction(_Frozen):
    type: Literal["uri"]
    uri: str = Field(max_length=1000, pattern=r"^(https?://|tel:|line://)\S+$")
    desktop_uri: str | None = Field(default=None, max_length=1000, pattern=r"^https?://\S+$")
    label: str | None = Field(default=None, min_length=1, max_length=20)  # LINE: ≤ 20


class PostbackAction(_Frozen):
    type: Literal["postback"]
    data: str = Field(min_length=1, max_length=300)
    display_text: str | None = Field(default=None, min_length=1, max_length=300)
    input_option: Literal["closeRichMenu", "openRichMenu", "openKeyboard", "openVoice"] | None = (
        None
    )
    label: str | None = Field(default=None, min_length=1, max_length=20)  # LINE: ≤ 20


class MessageAction(_Frozen):
    type: Literal["message"]
    text: str = Field(min_length=1, max_length=300)
    label: str | None = Field(default=None, min_length=1, max_length=20)  # LINE: ≤ 20


class SwitchAction(_Frozen):
    """Tab menus: switches this user to the menu behind `alias` (a per-user link)."""

    type: Literal["richmenuswitch"]
    alias: str = Field(pattern=_ALIAS)
    data: str = Field(min_length=1, max_length=300)
    label: str | None = Field(default=None, min_length=1, max_length=20)  # LINE: ≤ 20


Action = Annotated[
    UriAction | PostbackAction | MessageAction | SwitchAction, Field(discriminator="type")
]


class Area(_Frozen):
    label: str = Field(min_length=1, max_length=20)  # drawn on the image; Japanese first
    sublabel: str | None = Field(default=None, max_length=40)  # drawn smaller (English)
    bounds: Bounds | None = None  # None: the next free cell of the menu's grid
    action: Action
    colour: str | None = Field(default=None, pattern=_COLOUR)  # tile colour override


class Grid(_Frozen):
    columns: int = Field(ge=1, le=6)
    rows: int = Field(ge=1, le=4)
    top: int = Field(default=0, ge=0)  # the grid starts below a tab bar


class Style(_Frozen):
    background: str = Field(default="#E9EEF3", pattern=_COLOUR)
    tile: str = Field(default="#FFFFFF", pattern=_COLOUR)
    text: str = Field(default="#17324D", pattern=_COLOUR)
    subtext: str = Field(default="#5A6B7B", pattern=_COLOUR)
    tab_active: str = Field(default="#17324D", pattern=_COLOUR)
    tab_inactive: str = Field(default="#B8C4CF", pattern=_COLOUR)
    tab_text: str = Field(default="#FFFFFF", pattern=_COLOUR)


class ImageSpec(_Frozen):
    file: str | None = None  # a supplied JPEG/PNG next to the YAML; else generated
    format: Literal["png", "jpeg"] = "png"
    style: Style = Style()


class MenuDefinition(_Frozen):
    key: str = Field(pattern=_KEY)
    mode: Mode
    entry: bool = False  # the mode's default rich menu
    counterpart: str = Field(pattern=_KEY)
    alias: str | None = Field(default=None, pattern=_ALIAS)
    name: str = Field(min_length=1, max_length=250)  # + the hub tag stays ≤ 300
    chat_bar_text: str = Field(min_length=1, max_length=14)
    selected: bool = False
    size: Size
    image: ImageSpec = ImageSpec()
    grid: Grid | None = None
    areas: tuple[Area, ...] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _place_areas(self) -> MenuDefinition:
        cells = iter(_grid_cells(self.grid, self.size) if self.grid else ())
        placed = []
        for area in self.areas:
            bounds = area.bounds or next(cells, None)
            if bounds is None:
                raise ValueError(f"menu {self.key}: area {area.label!r} has no bounds and no cell")
            placed.append(area.model_copy(update={"bounds": bounds}))
        for index, area in enumerate(placed):
            b = area.bounds
            assert b is not None
            if b.x + b.width > self.size.width or b.y + b.height > self.size.height:
                raise ValueError(f"menu {self.key}: area {area.label!r} lies outside the menu")
            for other in placed[:index]:
                assert other.bounds is not None
                if b.overlaps(other.bounds):
                    raise ValueError(f"menu {self.key}: {area.label!r} overlaps {other.label!r}")
        # frozen model: placing grid cells is part of building it, so bypass the freeze once
        object.__setattr__(self, "areas", tuple(placed))
        return self


def _grid_cells(grid: Grid, size: Size) -> list[Bounds]:
    """Cells row by row; the last column/row takes the rounding remainder."""
    height = size.height - grid.top
    xs = [size.width * c // grid.columns for c in range(grid.columns + 1)]
    ys = [grid.top + height * r // grid.rows for r in range(grid.rows + 1)]
    return [
        Bounds(x=xs[c], y=ys[r], width=xs[c + 1] - xs[c], height=ys[r + 1] - ys[r])
        for r in range(grid.rows)
        for c in range(grid.columns)
    ]


class MenuCatalog(_Frozen):
    """All menus of one city, checked as a set (entries, counterparts, tab aliases)."""

    directory: Path
    menus: tuple[MenuDefinition, ...]

    @model_validator(mode="after")
    def _consistent(self) -> MenuCatalog:
        by_key = {m.key: m for m in self.menus}
        if len(by_key) != len(self.menus):
            raise ValueError("menu keys must be unique")
        aliases = [m.alias for m in self.menus if m.alias]
        if len(set(aliases)) != len(aliases):
            raise ValueError("menu aliases must be unique")
        for mode in MODES:
            entries = [m.key for m in self.menus if m.mode == mode and m.entry]
            if len(entries) != 1:
                raise ValueError(f"mode {mode} needs exactly one entry menu, has {entries}")
        alias_mode = {m.alias: m.mode for m in self.menus if m.alias}
        for menu in self.menus:
            other = by_key.get(menu.counterpart)
            if other is None or other.mode == menu.mode:
                raise ValueError(f"menu {menu.key}: counterpart must be a menu of the other mode")
            for area in menu.areas:
                if isinstance(area.action, SwitchAction):
                    if alias_mode.get(area.action.alias) != menu.mode:
                        raise ValueError(
                            f"menu {menu.key}: tab alias {area.action.alias!r} is not a menu "
                            f"of mode {menu.mode}"
                        )
        return self

    def get(self, key: str) -> MenuDefinition:
        menu = next((m for m in self.menus if m.key == key), None)
        if menu is None:
            raise NotFound(f"unknown rich menu {key!r}", fields={"menu": "unknown"})
        return menu

    def entry(self, mode: Mode) -> MenuDefinition:
        return next(m for m in self.menus if m.mode == mode and m.entry)

    def for_mode(self, mode: Mode) -> tuple[MenuDefinition, ...]:
        return tuple(m for m in self.menus if m.mode == mode)

    def counterpart(self, key: str) -> MenuDefinition:
        return self.get(self.get(key).counterpart)

    def image_path(self, menu: MenuDefinition) -> Path | None:
        return self.directory / menu.image.file if menu.image.file else None


def load_menu_catalog(directory: Path) -> MenuCatalog:
    """Every *.yaml in `directory` is one menu; any problem is a ConfigError naming the file."""
    menus = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            menus.append(MenuDefinition.model_validate(raw))
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"invalid rich menu {path}: {exc}") from exc
    if not menus:
        raise ConfigError(f"no rich menus (*.yaml) in {directory}")
    try:
        return MenuCatalog(directory=directory, menus=tuple(menus))
    except ValidationError as exc:
        raise ConfigError(f"rich menus in {directory} do not fit together: {exc}") from exc


# --- LINE request bodies and content digests ------------------------------------------------


def line_request_body(menu: MenuDefinition, *, digest: str | None = None) -> dict[str, Any]:
    """The RichMenuRequest JSON for LINE's `POST /v2/bot/richmenu` (camelCase)."""
    return {
        "size": {"width": menu.size.width, "height": menu.size.height},
        "selected": menu.selected,
        "name": tagged_name(menu, digest) if digest else menu.name,
        "chatBarText": menu.chat_bar_text,
        "areas": [
            {"bounds": area.bounds.model_dump(), "action": _action_body(area)}
            for area in menu.areas
            if area.bounds is not None
        ],
    }


def _action_body(area: Area) -> dict[str, Any]:
    action = area.action
    body: dict[str, Any] = {"type": action.type, "label": action.label or area.label}
    if isinstance(action, UriAction):
        body["uri"] = action.uri
        if action.desktop_uri:
            body["altUri"] = {"desktop": action.desktop_uri}
    elif isinstance(action, PostbackAction):
        body["data"] = action.data
        if action.display_text:
            body["displayText"] = action.display_text
        if action.input_option:
            body["inputOption"] = action.input_option
    elif isinstance(action, MessageAction):
        body["text"] = action.text
    else:
        body["richMenuAliasId"] = action.alias
        body["data"] = action.data
    return body


def alias_request_body(menu: MenuDefinition, rich_menu_id: str) -> dict[str, str]:
    """CreateRichMenuAliasRequest / UpdateRichMenuAliasRequest for a tab menu."""
    if not menu.alias:
        raise ConfigError(f"menu {menu.key} has no alias")
    return {"richMenuAliasId": menu.alias, "richMenuId": rich_menu_id}


def menu_digest(menu: MenuDefinition, image: bytes) -> str:
    """sha256 over what LINE stores: the request body (untagged name) and the image bytes."""
    canonical = json.dumps(line_request_body(menu), sort_keys=True, ensure_ascii=False)
    hasher = hashlib.sha256(canonical.encode("utf-8"))
    hasher.update(b"\x00")
    hasher.update(image)
    return hasher.hexdigest()


def tagged_name(menu: MenuDefinition, digest: str) -> str:
    return f"{menu.name} #hub:{menu.key}:{digest[:16]}"


def parse_menu_tag(name: str) -> tuple[str, str] | None:
    """(menu key, 16-hex digest prefix) of a menu this hub created; None for any other."""
    match = _TAG.search(name)
    return (match["key"], match["digest"]) if match else None
