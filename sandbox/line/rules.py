"""LINE rules the OpenAPI documents do not express (taken from the API reference text).

Each check returns LINE `details` entries; an empty list means the request passes.
"""

from __future__ import annotations

import io
import re
import warnings
from typing import Any

from PIL import Image

USER_ID = re.compile(r"^U[0-9a-f]{32}$")
PUSH_TARGET = re.compile(r"^[UCR][0-9a-f]{32}$")
TEXT_MAX = 5000  # characters, counted in UTF-16 code units as LINE does
ALT_TEXT_MAX = 1500
RICH_MENU_REQUIRED = ("size", "selected", "name", "chatBarText", "areas")
RICH_MENU_MAX_AREAS = 20
IMAGE_MAX_BYTES = 1024 * 1024
IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG"}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def message_details(messages: Any) -> list[dict[str, str]]:
    details: list[dict[str, str]] = []
    if not isinstance(messages, list):
        return details
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        text = message.get("text")
        if message.get("type") == "text" and isinstance(text, str):
            if not 1 <= utf16_len(text) <= TEXT_MAX:
                details.append(_detail(f"Length must be between 1 and {TEXT_MAX}", index, "text"))
        alt = message.get("altText")
        if isinstance(alt, str) and not 1 <= utf16_len(alt) <= ALT_TEXT_MAX:
            details.append(
                _detail(f"Length must be between 1 and {ALT_TEXT_MAX}", index, "altText")
            )
    return details


def _detail(message: str, index: int, prop: str) -> dict[str, str]:
    return {"message": message, "property": f"messages[{index}].{prop}"}


_ALL_USER_IDS = re.compile(r"(?:U[0-9a-f]{32}\n)*")


def user_id_details(user_ids: list[str], prop: str) -> list[dict[str, str]]:
    if _ALL_USER_IDS.fullmatch("\n".join(user_ids) + "\n"):  # one C-level pass for 500 ids
        return []
    return [
        {"message": "Invalid user ID", "property": f"{prop}[{i}]"}
        for i, user_id in enumerate(user_ids)
        if not USER_ID.match(user_id)
    ]


def rich_menu_details(menu: dict[str, Any]) -> list[dict[str, str]]:
    details = [
        {"message": "must be specified", "property": name}
        for name in RICH_MENU_REQUIRED
        if name not in menu
    ]
    size = menu.get("size") or {}
    width, height = size.get("width"), size.get("height")
    if isinstance(width, int) and isinstance(height, int):
        details += [
            {"message": message, "property": "size"}
            for message in image_size_problems(width, height)
        ]
        for index, area in enumerate(menu.get("areas") or []):
            bounds = area.get("bounds") or {}
            x, y = bounds.get("x", 0), bounds.get("y", 0)
            w, h = bounds.get("width", 0), bounds.get("height", 0)
            if x + w > width or y + h > height:
                details.append(
                    {
                        "message": "must be within the rich menu",
                        "property": f"areas[{index}].bounds",
                    }
                )
    if len(menu.get("areas") or []) > RICH_MENU_MAX_AREAS:
        details.append(
            {"message": f"Size must be between 0 and {RICH_MENU_MAX_AREAS}", "property": "areas"}
        )
    return details


def image_size_problems(width: int, height: int) -> list[str]:
    problems = []
    if not 800 <= width <= 2500:
        problems.append("width must be between 800 and 2500")
    if height < 250:
        problems.append("height must be 250 or more")
    if height and width / height < 1.45:
        problems.append("aspect ratio (width / height) must be 1.45 or more")
    return problems


def rich_menu_image_problem(content_type: str, data: bytes) -> str | None:
    """Why LINE would refuse this image, or None. Reads only the image header."""
    expected = IMAGE_TYPES.get(content_type)
    if expected is None:
        return "The content type must be image/jpeg or image/png"
    if len(data) > IMAGE_MAX_BYTES:
        return "The image must be 1 MB or smaller"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a decompression bomb is refused, not decoded
            with Image.open(io.BytesIO(data)) as image:
                found, (width, height) = image.format, image.size
    except Exception:  # any unreadable upload is simply invalid
        return "The image could not be read"
    if found != expected:
        return f"The image is not {expected}"
    problems = image_size_problems(width, height)
    return problems[0] if problems else None
