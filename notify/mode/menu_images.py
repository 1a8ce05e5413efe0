"""Rich menu images: generated from the labels with Pillow, or supplied; always checked
against LINE's rules (JPEG/PNG, width 800–2500, height ≥ 250, width/height ≥ 1.45, ≤ 1 MB,
the menu's size).

Pillow work is CPU-bound (~0.1–0.3 s a menu): call these through `asyncio.to_thread` from
async code. The font is a parameter (settings.rich_menu_font): without a CJK font Japanese
labels come out as empty boxes, so a missing font file is logged loudly.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from notify.errors import InvalidInput
from notify.mode.menus import Bounds, MenuCatalog, MenuDefinition, Size, SwitchAction

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 1_000_000  # LINE: 1 MB
_CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, slots=True)
class MenuImage:
    data: bytes
    content_type: str  # image/png or image/jpeg, for the upload's Content-Type
    width: int
    height: int


def menu_image(catalog: MenuCatalog, menu: MenuDefinition, *, font_path: Path | None) -> MenuImage:
    """The supplied image when the menu names one, else a generated one; always validated."""
    supplied = catalog.image_path(menu)
    if supplied is None:
        return render_menu_image(menu, font_path=font_path)
    try:
        data = supplied.read_bytes()
    except OSError as exc:
        raise InvalidInput(
            f"menu {menu.key}: cannot read image {supplied.name}: {exc.strerror}",
            fields={"image": "unreadable"},
        ) from exc
    return validate_menu_image(data, menu.size)


def validate_menu_image(data: bytes, size: Size | None = None) -> MenuImage:
    """Check an image against LINE's rules (and the menu's size); InvalidInput otherwise."""
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput(
            f"image is {len(data)} bytes; LINE accepts at most {MAX_IMAGE_BYTES}",
            fields={"image": "too large"},
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format, (width, height) = image.format or "", image.size
                if image_format in _CONTENT_TYPES:
                    image.verify()  # truncated / corrupt data raises here
    except (
        UnidentifiedImageError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise InvalidInput(
            f"image cannot be read as JPEG or PNG: {exc}", fields={"image": "unreadable"}
        ) from exc
    if image_format not in _CONTENT_TYPES:
        raise InvalidInput(
            f"image format {image_format or 'unknown'} is not JPEG or PNG",
            fields={"image": "wrong format"},
        )
    if not 800 <= width <= 2500 or height < 250 or width / height < 1.45:
        raise InvalidInput(
            f"image is {width}x{height}; LINE needs width 800–2500, height ≥ 250 and "
            "width/height ≥ 1.45",
            fields={"image": "wrong dimensions"},
        )
    if size is not None and (width, height) != (size.width, size.height):
        raise InvalidInput(
            f"image is {width}x{height} but the menu is {size.width}x{size.height}",
            fields={"image": "size does not match the menu"},
        )
    return MenuImage(data, _CONTENT_TYPES[image_format], width, height)


def render_menu_image(menu: MenuDefinition, *, font_path: Path | None) -> MenuImage:
    """Draw each area as a tile (tabs as a tab bar) with its label and sublabel."""
    style = menu.image.style
    image = Image.new("RGB", (menu.size.width, menu.size.height), style.background)
    draw = ImageDraw.Draw(image)
    load = _font_loader(font_path)
    gap = max(6, menu.size.width // 250)
    tiles = [(area, _inset(area.bounds, gap)) for area in menu.areas if area.bounds is not None]
    # one label size per kind of area (tabs / tiles), so the menu reads evenly
    sizes: dict[bool, tuple[int, int]] = {}
    for is_tab in (True, False):
        group = [(a, box) for a, box in tiles if isinstance(a.action, SwitchAction) is is_tab]
        if not group:
            continue
        label_px = min(
            _fit(draw, a.label, load, _w(box) * 86 // 100, _h(box) * 30 // 100) for a, box in group
        )
        sub_px = min(
            [label_px // 2]
            + [
                _fit(draw, a.sublabel, load, _w(box) * 86 // 100, _h(box) * 15 // 100)
                for a, box in group
                if a.sublabel
            ]
        )
        sizes[is_tab] = (label_px, sub_px)
    for area, box in tiles:
        if isinstance(area.action, SwitchAction):
            active = area.action.alias == menu.alias
            fill = style.tab_active if active else style.tab_inactive
            text_colour = sub_colour = style.tab_text
        else:
            fill, text_colour, sub_colour = area.colour or style.tile, style.text, style.subtext
        draw.rounded_rectangle(box, radius=gap * 3, fill=fill)
        label_px, sub_px = sizes[isinstance(area.action, SwitchAction)]
        lines = [(area.label, load(label_px), text_colour)]
        if area.sublabel:
            lines.append((area.sublabel, load(sub_px), sub_colour))
        _draw_centred(draw, lines, box)
    out = io.BytesIO()
    if menu.image.format == "jpeg":
        image.save(out, "JPEG", quality=88, optimize=True)
    else:
        image.save(out, "PNG", optimize=True)
    return validate_menu_image(out.getvalue(), menu.size)


class _FontLoader:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._cache: dict[int, _Font] = {}

    def __call__(self, size: int) -> _Font:
        if size not in self._cache:
            if self.path is None:
                self._cache[size] = ImageFont.load_default(size=size)
            else:
                self._cache[size] = ImageFont.truetype(str(self.path), size=size)
        return self._cache[size]


def _font_loader(font_path: Path | None) -> _FontLoader:
    if font_path is not None and font_path.is_file():
        try:
            ImageFont.truetype(str(font_path), size=12)
            return _FontLoader(font_path)
        except OSError:
            log.warning("rich menu font %s is not a usable font file", font_path)
    else:
        log.warning(
            "rich menu font %s not found: falling back to Pillow's default font, which has no "
            "Japanese glyphs (install fonts-ipaexfont-gothic or fonts-noto-cjk and set "
            "HUB_RICH_MENU_FONT)",
            font_path,
        )
    return _FontLoader(None)


_Box = tuple[int, int, int, int]


def _inset(b: Bounds, gap: int) -> _Box:
    return (b.x + gap, b.y + gap, b.x + b.width - gap, b.y + b.height - gap)


def _w(box: _Box) -> int:
    return box[2] - box[0]


def _h(box: _Box) -> int:
    return box[3] - box[1]


def _fit(draw: ImageDraw.ImageDraw, text: str, load: _FontLoader, max_w: int, max_h: int) -> int:
    """The largest font size (≤ max_h px) that fits `text` on one line within max_w."""
    size = max(8, max_h)
    while size > 8:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=load(size))
        if right - left <= max_w and bottom - top <= max_h:
            return size
        size = int(size * 0.9)
    return 8


def _draw_centred(
    draw: ImageDraw.ImageDraw, lines: list[tuple[str, _Font, str]], box: _Box
) -> None:
    boxes = [draw.textbbox((0, 0), text, font=font) for text, font, _ in lines]
    heights = [bottom - top for _, top, _, bottom in boxes]
    spacing = heights[0] // 3
    total = sum(heights) + spacing * (len(lines) - 1)
    y = box[1] + (box[3] - box[1] - total) // 2
    for (text, font, colour), (left, top, right, _), height in zip(
        lines, boxes, heights, strict=True
    ):
        x = box[0] + (box[2] - box[0] - (right - left)) // 2 - left
        draw.text((x, y - top), text, font=font, fill=colour)
        y += height + spacing
