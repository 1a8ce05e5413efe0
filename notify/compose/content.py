"""What staff write: one message per language, with optional per-channel overrides.

    {"ja": {"title": "乳幼児健診のお知らせ", "body": "{{ resident.ward }}の…", "url": "https://…",
            "line": {"messages": [{"type": "text", "text": "…"}, {"type": "flex", …}]},
            "push": {"title": "…", "body": "…", "data": {"screen": "news"}},
            "email": {"subject": "…", "text": "…", "html": "<p>…</p>"}},
     "en": {…}}

Every string is a jinja2 template (see notify.compose.engine); Flex `contents` may hold
templates in any string value. Without an override a channel is built from title/body/url.
Stored as JSON in `Broadcast.content`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from notify.city import CityConfig
from notify.compose.engine import SOURCE_MAX_CHARS, check_template
from notify.errors import InvalidInput, TemplateError
from notify.web.errors import fields_from_validation

LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")]
Source = Annotated[str, Field(min_length=1, max_length=SOURCE_MAX_CHARS)]
FLEX_SOURCE_MAX_BYTES = 50_000


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineText(_Part):
    type: Literal["text"] = "text"
    text: Source


class LineFlex(_Part):
    """A Flex message as LINE's own JSON (e.g. from the Flex Message Simulator)."""

    type: Literal["flex"] = "flex"
    altText: Source  # LINE's own field name, so Flex JSON can be pasted as is
    contents: dict[str, Any]

    @model_validator(mode="after")
    def _bubble_or_carousel(self) -> LineFlex:
        if self.contents.get("type") not in ("bubble", "carousel"):
            raise ValueError("contents.type must be 'bubble' or 'carousel'")
        return self


LinePart = Annotated[LineText | LineFlex, Field(discriminator="type")]


class LineContent(_Part):
    messages: list[LinePart] = Field(min_length=1, max_length=5)


class PushContent(_Part):
    title: Source | None = None
    body: Source | None = None
    data: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], Source] = Field(
        default_factory=dict, max_length=10
    )


class EmailContent(_Part):
    subject: Source | None = None
    text: Source | None = None
    html: Source | None = None  # the body part; the hub's layout wraps it


class LanguageContent(_Part):
    title: Source
    body: Source
    url: Annotated[str, Field(max_length=1000)] | None = None
    line: LineContent | None = None
    push: PushContent | None = None
    email: EmailContent | None = None


class Content(RootModel[dict[LanguageCode, LanguageContent]]):
    """Japanese is required: it is the fallback for every other language."""

    @model_validator(mode="after")
    def _has_japanese(self) -> Content:
        if "ja" not in self.root:
            raise ValueError("a Japanese version ('ja') is required")
        return self

    def for_language(self, language: str) -> tuple[str, LanguageContent]:
        """The content for `language`, else its base language (zh-TW → zh), else Japanese."""
        for candidate in (language, language.split("-")[0], "ja"):
            if candidate in self.root:
                return candidate, self.root[candidate]
        raise KeyError(language)  # unreachable: 'ja' is required


def parse_content(data: Any, city: CityConfig | None = None, *, path: str = "content") -> Content:
    """Validate shape, languages (against the city) and every template's syntax."""
    if isinstance(data, Content):
        content = data
    else:
        try:
            content = Content.model_validate(data)
        except ValidationError as exc:
            fields = {
                f"{path}.{key}" if key != "body" else path: reason
                for key, reason in fields_from_validation(exc).items()
            }
            raise InvalidInput(
                "本文の形式が不正です / invalid message content", fields=fields
            ) from exc
    problems: dict[str, str] = {}
    for language, part in content.root.items():
        if city is not None and language.split("-")[0] not in city.language_codes:
            problems[f"{path}.{language}"] = f"unknown language {language!r}"
        for field, source, html in template_fields(part, f"{path}.{language}"):
            try:
                check_template(source, field=field, html=html)
            except TemplateError as exc:
                problems.update(exc.fields)
    for language, part in content.root.items():
        for index, message in enumerate(part.line.messages if part.line else []):
            if isinstance(message, LineFlex):
                size = len(json.dumps(message.contents, ensure_ascii=False).encode())
                if size > FLEX_SOURCE_MAX_BYTES:
                    key = f"{path}.{language}.line.messages.{index}.contents"
                    problems[key] = f"Flex JSON larger than {FLEX_SOURCE_MAX_BYTES} bytes"
    if problems:
        raise TemplateError("テンプレートに誤りがあります / template errors", fields=problems)
    return content


def template_fields(part: LanguageContent, at: str) -> list[tuple[str, str, bool]]:
    """Every (field path, template source, is_html) in one language's content."""
    found = [(f"{at}.title", part.title, False), (f"{at}.body", part.body, False)]
    if part.url:
        found.append((f"{at}.url", part.url, False))
    if part.line:
        for i, message in enumerate(part.line.messages):
            base = f"{at}.line.messages.{i}"
            if isinstance(message, LineText):
                found.append((f"{base}.text", message.text, False))
            else:
                found.append((f"{base}.altText", message.altText, False))
                found.extend(flex_strings(message.contents, f"{base}.contents"))
    if part.push:
        for name in ("title", "body"):
            if (value := getattr(part.push, name)) is not None:
                found.append((f"{at}.push.{name}", value, False))
        found.extend((f"{at}.push.data.{k}", v, False) for k, v in part.push.data.items())
    if part.email:
        for name in ("subject", "text", "html"):
            if (value := getattr(part.email, name)) is not None:
                found.append((f"{at}.email.{name}", value, name == "html"))
    return found


def flex_strings(value: Any, at: str) -> list[tuple[str, str, bool]]:
    if isinstance(value, str):
        return [(at, value, False)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in flex_strings(v, f"{at}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in flex_strings(v, f"{at}.{i}")]
    return []
