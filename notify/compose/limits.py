"""Each channel's limits on a rendered message, checked before approval and at render time.

LINE counts characters in UTF-16 code units (an emoji outside the BMP is two). FCM refuses a
notification payload over 4,096 bytes; we keep a margin for the fields the adapter adds.
Gmail clips HTML mail over 102 KB, so we stop at 100 KB.
"""

from __future__ import annotations

import json

from channels.base import EmailMessage, LineMessage, PushMessage

LINE_MAX_MESSAGES = 5
LINE_TEXT_MAX = 5000
LINE_ALT_TEXT_MAX = 1500
LINE_BUBBLE_MAX_BYTES = 30_000
LINE_CAROUSEL_MAX_BYTES = 50_000
LINE_CAROUSEL_MAX_BUBBLES = 12
PUSH_TITLE_MAX = 100
PUSH_BODY_MAX = 1000
PUSH_DATA_MAX_KEYS = 10
PUSH_PAYLOAD_MAX_BYTES = 3800
EMAIL_SUBJECT_MAX = 150
EMAIL_TEXT_MAX = 100_000
EMAIL_HTML_MAX_BYTES = 100_000

RenderedMessage = LineMessage | PushMessage | EmailMessage


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def limit_problems(message: RenderedMessage) -> dict[str, str]:
    """Problems keyed by the rendered field (`messages.0.text`, `title`, `subject`, …)."""
    if isinstance(message, LineMessage):
        return _line(message)
    if isinstance(message, PushMessage):
        return _push(message)
    return _email(message)


def _between(value: str, low: int, high: int, unit: str = "characters") -> str | None:
    n = utf16_len(value)
    if n < low:
        return "must not be empty"
    if n > high:
        return f"{n} {unit}, the limit is {high}"
    return None


def _line(message: LineMessage) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not 1 <= len(message.messages) <= LINE_MAX_MESSAGES:
        problems["messages"] = f"{len(message.messages)} messages, LINE takes 1 to 5"
    for i, item in enumerate(message.messages):
        if item.get("type") == "text":
            if reason := _between(str(item.get("text", "")), 1, LINE_TEXT_MAX):
                problems[f"messages.{i}.text"] = reason
        elif item.get("type") == "flex":
            if reason := _between(str(item.get("altText", "")), 1, LINE_ALT_TEXT_MAX):
                problems[f"messages.{i}.altText"] = reason
            problems.update(_flex_size(item.get("contents"), f"messages.{i}.contents"))
    return problems


def _flex_size(contents: object, at: str) -> dict[str, str]:
    if not isinstance(contents, dict):
        return {at: "must be a bubble or a carousel"}
    size = len(json.dumps(contents, ensure_ascii=False, separators=(",", ":")).encode())
    if contents.get("type") == "carousel":
        bubbles = contents.get("contents")
        if isinstance(bubbles, list) and len(bubbles) > LINE_CAROUSEL_MAX_BUBBLES:
            return {at: f"{len(bubbles)} bubbles, a carousel takes at most 12"}
        limit = LINE_CAROUSEL_MAX_BYTES
    else:
        limit = LINE_BUBBLE_MAX_BYTES
    return {at: f"{size} bytes of JSON, the limit is {limit}"} if size > limit else {}


def _push(message: PushMessage) -> dict[str, str]:
    problems: dict[str, str] = {}
    if reason := _between(message.title, 1, PUSH_TITLE_MAX):
        problems["title"] = reason
    if reason := _between(message.body, 1, PUSH_BODY_MAX):
        problems["body"] = reason
    if len(message.data) > PUSH_DATA_MAX_KEYS:
        problems["data"] = f"{len(message.data)} keys, the limit is {PUSH_DATA_MAX_KEYS}"
    payload = {"title": message.title, "body": message.body, "data": dict(message.data)}
    size = len(json.dumps(payload, ensure_ascii=False).encode())
    if size > PUSH_PAYLOAD_MAX_BYTES and not problems:
        problems["body"] = f"payload {size} bytes, the limit is {PUSH_PAYLOAD_MAX_BYTES}"
    return problems


def _email(message: EmailMessage) -> dict[str, str]:
    problems: dict[str, str] = {}
    if reason := _between(message.subject, 1, EMAIL_SUBJECT_MAX):
        problems["subject"] = reason
    elif "\n" in message.subject or "\r" in message.subject:
        problems["subject"] = "must be one line"
    if reason := _between(message.text, 1, EMAIL_TEXT_MAX):
        problems["text"] = reason
    if message.html is not None and len(message.html.encode()) > EMAIL_HTML_MAX_BYTES:
        problems["html"] = (
            f"{len(message.html.encode())} bytes, the limit is {EMAIL_HTML_MAX_BYTES}"
        )
    return problems
