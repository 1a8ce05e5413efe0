"""Rich menus as configuration: loading, checks, LINE request bodies, content digests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from linebot.v3.messaging import RichMenuRequest

from notify.errors import ConfigError, NotFound
from notify.mode.menus import (
    MenuCatalog,
    MenuDefinition,
    alias_request_body,
    line_request_body,
    load_menu_catalog,
    menu_digest,
    parse_menu_tag,
    tagged_name,
)
from tests.mode_menus.conftest import MENU_DIR, LineSchema


def test_each_city_has_a_normal_and_a_disaster_entry_menu(catalog: MenuCatalog) -> None:
    normal, disaster = catalog.entry("normal"), catalog.entry("disaster")
    assert catalog.counterpart(normal.key) == disaster
    assert catalog.counterpart(disaster.key) == normal
    for menu in catalog.menus:
        assert catalog.counterpart(menu.key).mode != menu.mode
        assert (menu.size.width, menu.size.height) in ((2500, 1686), (2500, 843))
    labels = {a.label for a in disaster.areas}
    assert {"ハザードマップ", "開設中の避難所", "避難情報"} <= labels
    assert disaster.selected and not normal.selected


def test_kawasaki_disaster_mode_is_a_tab_set() -> None:
    catalog = load_menu_catalog(MENU_DIR / "kawasaki")
    tabs = catalog.for_mode("disaster")
    assert [m.key for m in tabs] == ["disaster-now", "disaster-prepare"]
    assert [m.alias for m in tabs] == ["kawasaki-disaster-now", "kawasaki-disaster-prep"]
    assert catalog.counterpart("disaster-prepare").key == "normal"
    normal_labels = {a.label for a in catalog.entry("normal").areas}
    assert {"市公式アプリ", "区役所の待ち時間", "イベント"} <= normal_labels
    body = line_request_body(catalog.get("disaster-prepare"))
    switches = [a["action"] for a in body["areas"] if a["action"]["type"] == "richmenuswitch"]
    assert [s["richMenuAliasId"] for s in switches] == [m.alias for m in tabs]


def test_an_unknown_menu_is_refused(catalog: MenuCatalog) -> None:
    with pytest.raises(NotFound) as caught:
        catalog.get("holiday")
    assert caught.value.fields == {"menu": "unknown"} and caught.value.status == 404


def test_request_bodies_match_lines_schema(catalog: MenuCatalog, line_schema: LineSchema) -> None:
    for menu in catalog.menus:
        body = line_request_body(menu, digest="ab" * 32)
        line_schema.validate("RichMenuRequest", body)
        line_schema.validate("RichMenuSize", body["size"])
        assert len(body["name"]) <= 300 and len(body["chatBarText"]) <= 14
        assert 1 <= len(body["areas"]) <= 20
        for area in body["areas"]:
            line_schema.validate("RichMenuBounds", area["bounds"])
            action = area["action"]
            line_schema.validate(line_schema.action_schema(action["type"]), action)
            assert 1 <= len(action["label"]) <= 20
            b = area["bounds"]
            assert b["x"] + b["width"] <= body["size"]["width"]
            assert b["y"] + b["height"] <= body["size"]["height"]
        types = {a["action"]["type"] for a in body["areas"]}
        assert types <= {"uri", "postback", "message", "richmenuswitch"}
        if menu.alias:
            line_schema.validate(
                "CreateRichMenuAliasRequest", alias_request_body(menu, "richmenu-1")
            )


def test_every_action_type_is_used_somewhere() -> None:
    types = {
        area["action"]["type"]
        for city in ("kawasaki", "sagamihara")
        for menu in load_menu_catalog(MENU_DIR / city).menus
        for area in line_request_body(menu)["areas"]
    }
    assert types == {"uri", "postback", "message", "richmenuswitch"}


def test_request_bodies_round_trip_through_the_line_sdk(catalog: MenuCatalog) -> None:
    for menu in catalog.menus:
        body = line_request_body(menu)
        assert RichMenuRequest.from_dict(body).to_dict() == body


def test_grid_cells_tile_the_menu_without_gaps() -> None:
    menu = load_menu_catalog(MENU_DIR / "kawasaki").get("normal")
    bounds = [a.bounds for a in menu.areas]
    assert sum(b.width * b.height for b in bounds if b) == 2500 * 1686
    assert [(b.x, b.width) for b in bounds[:3] if b] == [(0, 833), (833, 833), (1666, 834)]


def test_digest_tracks_definition_and_image(catalog: MenuCatalog) -> None:
    menu = catalog.entry("disaster")
    image = b"\x89PNG fake image bytes"
    digest = menu_digest(menu, image)
    assert digest == menu_digest(menu, image) and len(digest) == 64
    assert menu_digest(menu, image + b"!") != digest
    relabelled = menu.model_copy(update={"chat_bar_text": "災害時メニュー"})
    assert menu_digest(relabelled, image) != digest
    assert menu_digest(catalog.entry("normal"), image) != digest


def test_tagged_names_mark_the_hubs_own_menus(catalog: MenuCatalog) -> None:
    menu = catalog.entry("normal")
    digest = menu_digest(menu, b"img")
    name = tagged_name(menu, digest)
    assert name.startswith(menu.name)
    assert parse_menu_tag(name) == (menu.key, digest[:16])
    assert line_request_body(menu, digest=digest)["name"] == name
    assert parse_menu_tag(menu.name) is None
    assert parse_menu_tag("someone else's menu #hub:normal:xyz") is None
    longest = menu.model_copy(update={"name": "あ" * 250})
    assert len(tagged_name(longest, digest)) <= 300


def test_alias_body_needs_an_alias() -> None:
    with pytest.raises(ConfigError):
        alias_request_body(load_menu_catalog(MENU_DIR / "sagamihara").entry("normal"), "x")


# --- bad configuration -----------------------------------------------------------------------


def _copy(tmp_path: Path, city: str = "kawasaki") -> dict[str, dict[str, Any]]:
    return {
        p.name: yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((MENU_DIR / city).glob("*.yaml"))
    }


def _write(tmp_path: Path, menus: dict[str, dict[str, Any]]) -> Path:
    for name, raw in menus.items():
        (tmp_path / name).write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return tmp_path


def _area(raw: dict[str, Any], index: int) -> dict[str, Any]:
    area: dict[str, Any] = raw["areas"][index]
    return area


BAD = [
    (lambda m: m["normal.yaml"]["size"].update(height=1800), r"1\.45"),
    (lambda m: m["normal.yaml"]["size"].update(width=700), "width"),
    (
        lambda m: m["normal.yaml"].update(chat_bar_text="とても長いチャットバーのテキスト"),
        "chat_bar_text",
    ),
    (lambda m: m["normal.yaml"]["areas"].extend([m["normal.yaml"]["areas"][0]] * 15), "areas"),
    (lambda m: _area(m["normal.yaml"], 0).update(label="あ" * 21), "label"),
    (lambda m: _area(m["normal.yaml"], 0)["action"].update(uri="javascript:alert(1)"), "uri"),
    (lambda m: _area(m["normal.yaml"], 1)["action"].update(data="x" * 301), "data"),
    (lambda m: _area(m["normal.yaml"], 1)["action"].update(type="camera"), "action"),
    (
        lambda m: _area(m["normal.yaml"], 0).update(
            bounds={"x": 0, "y": 0, "width": 900, "height": 10}
        ),
        "overlaps",
    ),
    (
        lambda m: _area(m["normal.yaml"], 0).update(
            bounds={"x": 2000, "y": 0, "width": 600, "height": 10}
        ),
        "outside",
    ),
    (lambda m: m["normal.yaml"].pop("grid"), "no bounds"),
    (lambda m: m["normal.yaml"]["areas"].append(dict(_area(m["normal.yaml"], 0))), "no cell"),
    (lambda m: m["disaster_prepare.yaml"].update(entry=True), "exactly one entry"),
    (lambda m: m["normal.yaml"].update(counterpart="normal"), "counterpart"),
    (lambda m: m["normal.yaml"].update(counterpart="holiday"), "counterpart"),
    (lambda m: m["disaster_prepare.yaml"].update(alias="kawasaki-disaster-now"), "aliases"),
    (lambda m: m["disaster_prepare.yaml"].update(key="disaster-now"), "keys"),
    (lambda m: _area(m["disaster_now.yaml"], 1)["action"].update(alias="nowhere"), "tab alias"),
    (lambda m: m["normal.yaml"].update(colour="#fff"), "Extra inputs"),
    (lambda m: m["normal.yaml"]["image"]["style"].update(background="red"), "background"),
]


@pytest.mark.parametrize(("edit", "message"), BAD)
def test_bad_menus_are_config_errors(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    menus = _copy(tmp_path)
    edit(menus)
    with pytest.raises(ConfigError, match=message):
        load_menu_catalog(_write(tmp_path, menus))


def test_an_empty_or_unreadable_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no rich menus"):
        load_menu_catalog(tmp_path)
    (tmp_path / "broken.yaml").write_text("key: [", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        load_menu_catalog(tmp_path)


def test_a_copied_folder_loads_the_same(tmp_path: Path) -> None:
    catalog = load_menu_catalog(_write(tmp_path, _copy(tmp_path)))
    original = load_menu_catalog(MENU_DIR / "kawasaki")
    assert [line_request_body(m) for m in catalog.menus] == [
        line_request_body(m) for m in original.menus
    ]
    assert isinstance(catalog.menus[0], MenuDefinition)
