"""The compose form ↔ a broadcast's fields (title, topic, content, segment, channels, …).

Only translation between form fields and the core's data shapes lives here: validation of
content, segments and lifecycle stays in `notify.compose`, `segments` and `notify.broadcasts`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from notify.city import CityConfig
from notify.console.segment_form import AGE_FIELDS, SegmentForm, form_from_rule, rule_from_form
from notify.errors import InvalidInput
from notify.models import Broadcast
from segments.rules import Rule, rule_to_json

CHANNELS = ("line", "fcm", "email")
TEXT_FIELDS = ("title", "body", "url")


@dataclass(slots=True)
class ComposeForm:
    title: str = ""
    topic: str = ""
    priority: str = "normal"
    channels: list[str] = field(default_factory=lambda: list(CHANNELS))
    channel_policy: str = "all"
    send_at_local: str = ""  # <input type="datetime-local"> value, city time
    # language → {"title", "body", "url"}; Japanese is required by notify.compose
    texts: dict[str, dict[str, str]] = field(default_factory=dict)
    # overrides of the Japanese version per channel (optional)
    line_text: str = ""
    push_title: str = ""
    push_body: str = ""
    email_subject: str = ""
    segment: SegmentForm = field(default_factory=SegmentForm)

    def text(self, language: str, name: str) -> str:
        return self.texts.get(language, {}).get(name, "")

    def content(self) -> dict[str, Any]:
        content: dict[str, Any] = {}
        for language, values in self.texts.items():
            if not any(values.values()):
                continue
            part: dict[str, Any] = {k: v for k, v in values.items() if v}
            content[language] = part
        ja = content.setdefault("ja", {})
        if self.line_text:
            ja["line"] = {"messages": [{"type": "text", "text": self.line_text}]}
        push = {k: v for k, v in (("title", self.push_title), ("body", self.push_body)) if v}
        if push:
            ja["push"] = push
        if self.email_subject:
            ja["email"] = {"subject": self.email_subject}
        return content

    def send_at(self, city: CityConfig) -> dt.datetime | None:
        if not self.send_at_local:
            return None
        try:
            local = dt.datetime.fromisoformat(self.send_at_local)
        except ValueError as exc:
            raise InvalidInput(
                "配信日時の形式が不正です / invalid send time", fields={"send_at": "invalid"}
            ) from exc
        return local.replace(tzinfo=city.tz).astimezone(dt.UTC)

    def rule(self, city: CityConfig) -> Rule:
        return rule_from_form(self.segment, city)

    def payload(self, city: CityConfig) -> dict[str, Any]:
        """The broadcast's fields as the core takes them (same shape as the JSON API body)."""
        send_at = self.send_at(city)
        return {
            "title": self.title,
            "topic": self.topic or None,
            "priority": self.priority,
            "content": self.content(),
            "segment": rule_to_json(self.rule(city)),
            "channels": self.channels,
            "channel_policy": self.channel_policy,
            "send_at": send_at.isoformat() if send_at else None,
        }


def form_from_post(form: Any, city: CityConfig) -> ComposeForm:
    def one(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def many(name: str) -> list[str]:
        return [v for v in form.getall(name, []) if isinstance(v, str) and v]

    texts = {
        lang.code: {name: one(f"{lang.code}_{name}") for name in TEXT_FIELDS}
        for lang in city.languages
    }
    advanced = one("segment_advanced")
    segment = SegmentForm(
        wards=many("wards"),
        languages=many("languages"),
        interests=many("interests"),
        age={name: one(name) for name in AGE_FIELDS},
    )
    if advanced:
        try:
            segment.advanced = json.loads(advanced)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise InvalidInput("配信対象が不正です / invalid segment") from exc
    return ComposeForm(
        title=one("title"),
        topic=one("topic"),
        priority="emergency" if one("priority") == "emergency" else "normal",
        channels=[c for c in many("channels") if c in CHANNELS],
        channel_policy="preferred" if one("channel_policy") == "preferred" else "all",
        send_at_local=one("send_at"),
        texts=texts,
        line_text=one("line_text"),
        push_title=one("push_title"),
        push_body=one("push_body"),
        email_subject=one("email_subject"),
        segment=segment,
    )


def form_from_broadcast(broadcast: Broadcast, city: CityConfig) -> ComposeForm:
    content: dict[str, Any] = broadcast.content or {}
    ja: dict[str, Any] = content.get("ja", {})
    line_messages = (ja.get("line") or {}).get("messages") or []
    first_text = next((m.get("text", "") for m in line_messages if m.get("type") == "text"), "")
    send_at = ""
    if broadcast.send_at is not None:
        send_at = broadcast.send_at.astimezone(city.tz).strftime("%Y-%m-%dT%H:%M")
    return ComposeForm(
        title=broadcast.title,
        topic=broadcast.topic or "",
        priority=broadcast.priority,
        channels=list(broadcast.channels or []),
        channel_policy=broadcast.channel_policy,
        send_at_local=send_at,
        texts={
            lang: {name: str(part.get(name) or "") for name in TEXT_FIELDS}
            for lang, part in content.items()
        },
        line_text=first_text,
        push_title=str((ja.get("push") or {}).get("title") or ""),
        push_body=str((ja.get("push") or {}).get("body") or ""),
        email_subject=str((ja.get("email") or {}).get("subject") or ""),
        segment=form_from_rule(broadcast.segment, city),
    )
