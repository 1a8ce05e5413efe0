"""Per-channel previews: the core renders each message exactly as it would be sent, and the
page draws it as a LINE chat bubble, a phone notification and an email."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.base import EmailMessage, LineMessage, PushMessage
from notify.city import CityConfig
from notify.compose.context import message_context
from notify.compose.render import render_message
from notify.errors import HubError

CHANNEL_ORDER = ("line", "fcm", "email")


@dataclass(frozen=True, slots=True)
class ChannelPreview:
    channel: str
    language: str
    message: LineMessage | PushMessage | EmailMessage | None
    error: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def line_parts(self) -> list[dict[str, Any]]:
        """LINE messages as bubbles: text as is, Flex shown by its alt text (what the chat
        list and notifications show) with a marker."""
        if not isinstance(self.message, LineMessage):
            return []
        return [
            {"flex": m.get("type") == "flex", "text": m.get("text") or m.get("altText", "")}
            for m in self.message.messages
        ]


def build_previews(
    content: Mapping[str, Any],
    *,
    channels: Sequence[str],
    city: CityConfig,
    title: str,
    priority: str,
    send_at: dt.datetime | None,
    ward_code: str | None = None,
    broadcast_id: int | None = None,
) -> list[ChannelPreview]:
    languages = [code for code in content if code == "ja"] + sorted(c for c in content if c != "ja")
    previews: list[ChannelPreview] = []
    for language in languages or ["ja"]:
        context = message_context(
            city,
            language=language,
            ward_code=ward_code or city.wards[0].code,
            broadcast_id=broadcast_id,
            title=title,
            priority=priority,
            send_at=send_at,
        )
        for channel in (c for c in CHANNEL_ORDER if c in channels):
            try:
                message = render_message(content, channel, language, context)
            except HubError as exc:
                previews.append(ChannelPreview(channel, language, None, exc.message, exc.fields))
                continue
            previews.append(ChannelPreview(channel, language, message))
    return previews
