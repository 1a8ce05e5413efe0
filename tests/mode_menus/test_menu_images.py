"""Menu images: generated with a CJK font (or supplied), always within LINE's rules."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest
import yaml
from PIL import Image, ImageFont

from notify.errors import InvalidInput
from notify.mode.menu_images import (
    MAX_IMAGE_BYTES,
    menu_image,
    render_menu_image,
    validate_menu_image,
)
from notify.mode.menus import MenuCatalog, Size, load_menu_catalog, menu_digest
from tests.mode_menus.conftest import MENU_DIR


def _png(
    width: int, height: int, *, mode: str = "RGB", noise: bool = False, fmt: str = "PNG"
) -> bytes:
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new(mode, (width, height), 0 if mode == "1" else "#336699")
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def test_every_configured_menu_renders_within_lines_rules(
    catalog: MenuCatalog, cjk_font: Path
) -> None:
    for menu in catalog.menus:
        image = menu_image(catalog, menu, font_path=cjk_font)
        assert image.content_type == "image/png"
        assert (image.width, image.height) == (menu.size.width, menu.size.height)
        assert len(image.data) <= MAX_IMAGE_BYTES
        with Image.open(io.BytesIO(image.data)) as decoded:
            assert decoded.format == "PNG" and decoded.size == (menu.size.width, menu.size.height)
        # deterministic, so the content digest is stable between syncs
        again = render_menu_image(menu, font_path=cjk_font)
        assert again.data == image.data
        assert menu_digest(menu, again.data) == menu_digest(menu, image.data)


def test_the_cjk_font_draws_distinct_japanese_glyphs(cjk_font: Path) -> None:
    font = ImageFont.truetype(str(cjk_font), size=64)
    masks = {text: bytes(font.getmask(text)) for text in ("避難所", "備え", "川崎")}
    assert all(any(mask) for mask in masks.values())
    assert len(set(masks.values())) == 3


def test_labels_change_the_pixels(catalog: MenuCatalog, cjk_font: Path) -> None:
    menu = catalog.entry("disaster")
    areas = list(menu.areas)
    areas[-1] = areas[-1].model_copy(update={"label": "給水所"})
    changed = menu.model_copy(update={"areas": tuple(areas)})
    assert (
        render_menu_image(changed, font_path=cjk_font).data
        != render_menu_image(menu, font_path=cjk_font).data
    )


def test_missing_font_falls_back_with_a_warning(
    catalog: MenuCatalog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    menu = catalog.entry("normal")
    with caplog.at_level(logging.WARNING, logger="notify.mode.menu_images"):
        image = render_menu_image(menu, font_path=tmp_path / "absent.ttf")
    assert "fonts-ipaexfont-gothic" in caplog.text and "absent.ttf" in caplog.text
    assert (image.width, image.height) == (menu.size.width, menu.size.height)
    (tmp_path / "junk.ttf").write_bytes(b"not a font")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="notify.mode.menu_images"):
        render_menu_image(menu, font_path=tmp_path / "junk.ttf")
    assert "not a usable font" in caplog.text


def test_jpeg_menus_render_as_jpeg(catalog: MenuCatalog, cjk_font: Path) -> None:
    menu = catalog.entry("normal")
    jpeg = menu.model_copy(update={"image": menu.image.model_copy(update={"format": "jpeg"})})
    image = render_menu_image(jpeg, font_path=cjk_font)
    assert image.content_type == "image/jpeg" and image.data[:2] == b"\xff\xd8"


# --- supplied images and LINE's limits --------------------------------------------------------


def _catalog_with_image(tmp_path: Path, image: bytes | None, suffix: str = "png") -> MenuCatalog:
    for path in (MENU_DIR / "sagamihara").glob("*.yaml"):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if raw["key"] == "disaster":
            raw["image"]["file"] = f"disaster.{suffix}"
        (tmp_path / path.name).write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    if image is not None:
        (tmp_path / f"disaster.{suffix}").write_bytes(image)
    return load_menu_catalog(tmp_path)


def test_a_supplied_image_is_used_as_is(tmp_path: Path, cjk_font: Path) -> None:
    supplied = _png(2500, 843, fmt="JPEG")
    catalog = _catalog_with_image(tmp_path, supplied, "jpg")
    image = menu_image(catalog, catalog.get("disaster"), font_path=cjk_font)
    assert image.data == supplied and image.content_type == "image/jpeg"
    generated = menu_image(catalog, catalog.get("normal"), font_path=cjk_font)
    assert generated.content_type == "image/png"


@pytest.mark.parametrize(
    ("image", "field_value"),
    [
        (_png(2500, 1686), "size does not match the menu"),
        (_png(2500, 843, noise=True), "too large"),
        (_png(2500, 843, fmt="GIF"), "wrong format"),
        (_png(2500, 843)[:200], "unreadable"),
        (b"\x89PNG\r\n\x1a\n" + os.urandom(500), "unreadable"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "unreadable"),
        (None, "unreadable"),  # the file is missing
    ],
)
def test_bad_supplied_images_are_refused(
    tmp_path: Path, cjk_font: Path, image, field_value
) -> None:  # type: ignore[no-untyped-def]
    catalog = _catalog_with_image(tmp_path, image)
    with pytest.raises(InvalidInput) as caught:
        menu_image(catalog, catalog.get("disaster"), font_path=cjk_font)
    assert caught.value.fields == {"image": field_value}


@pytest.mark.parametrize(
    ("image", "field_value"),
    [
        (_png(700, 300), "wrong dimensions"),
        (_png(2600, 843), "wrong dimensions"),
        (_png(1000, 200), "wrong dimensions"),
        (_png(1000, 700), "wrong dimensions"),  # width/height 1.43 < 1.45
        (_png(10_000, 10_000, mode="1"), "unreadable"),  # decompression bomb (> 89 Mpx)
    ],
)
def test_images_outside_lines_limits_are_refused(image: bytes, field_value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_menu_image(image)
    assert caught.value.fields == {"image": field_value}


def test_limits_are_inclusive() -> None:
    assert validate_menu_image(_png(800, 250)).width == 800
    assert validate_menu_image(_png(2500, 1686), Size(width=2500, height=1686)).height == 1686
    big = _png(1200, 800, noise=True)
    assert len(big) > MAX_IMAGE_BYTES
    with pytest.raises(InvalidInput):
        validate_menu_image(big)
