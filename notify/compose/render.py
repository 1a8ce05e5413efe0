"""`render_message`: one broadcast's content → the frozen message one channel sends.

Pure: (content, channel, language, context) in, a `LineMessage` / `PushMessage` /
`EmailMessage` out, or a `TemplateError` / `InvalidInput` naming the field — never a crash.
A language the content lacks falls back to its base language, then to Japanese. A channel
without an override is built from title / body / url:

- LINE: one text message "title\\n\\nbody\\n\\nurl";
- push: the title, and the body cut to 200 characters (the app shows the whole message);
- email: subject = title, text = body + url, HTML = the body's paragraphs in the hub layout
  (staff HTML, when given, is sanitised with nh3 and put in the same layout).

Rendered messages are checked against the channel's limits (notify.compose.limits).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from channels.base import EmailMessage, LineMessage, PushMessage
from notify.compose.content import (
    Content,
    LanguageContent,
    LineFlex,
    LineText,
    parse_content,
)
from notify.compose.engine import render_template
from notify.compose.limits import RenderedMessage, limit_problems
from notify.errors import InvalidInput
from notify.settings import REPO_ROOT

PUSH_DEFAULT_BODY_CHARS = 200
CONTENT_KEY = {"line": "line", "fcm": "push", "email": "email"}
# The hub's own (trusted) layout files: plain jinja2 with autoescape.
_LAYOUTS = Environment(
    loader=FileSystemLoader(REPO_ROOT / "templates" / "messages"),
    autoescape=True,
    undefined=StrictUndefined,
)


def render_message(
    content: Content | Mapping[str, Any],
    channel: str,
    language: str,
    context: Mapping[str, Any],
) -> RenderedMessage:
    parsed = content if isinstance(content, Content) else parse_content(content)
    used, part = parsed.for_language(language)
    at = f"content.{used}"
    if channel == "line":
        message: RenderedMessage = _line(part, context, at)
    elif channel == "fcm":
        message = _push(part, context, at)
    elif channel == "email":
        message = _email(part, context, at, used)
    else:
        raise InvalidInput(f"unknown channel {channel!r}", fields={"channel": "unknown channel"})
    problems = limit_problems(message)
    if problems:
        prefix = f"{at}.{CONTENT_KEY[channel]}"
        raise InvalidInput(
            "メッセージが配信経路の上限を超えています / message exceeds the channel's limits",
            fields={f"{prefix}.{key}": reason for key, reason in problems.items()},
        )
    return message


def _text(source: str, context: Mapping[str, Any], field: str) -> str:
    return render_template(source, context, field=field)


def _common(part: LanguageContent, context: Mapping[str, Any], at: str) -> tuple[str, str, str]:
    title = _text(part.title, context, f"{at}.title").strip()
    body = _text(part.body, context, f"{at}.body").strip()
    url = _text(part.url, context, f"{at}.url").strip() if part.url else ""
    if url and not url.startswith(("https://", "http://")):
        raise InvalidInput(
            "リンクは http(s):// で始めてください / the link must be an http(s) URL",
            fields={f"{at}.url": "must start with https:// or http://"},
        )
    return title, body, url


def _line(part: LanguageContent, context: Mapping[str, Any], at: str) -> LineMessage:
    if part.line is None:
        title, body, url = _common(part, context, at)
        text = "\n\n".join(p for p in (title, body, url) if p)
        return LineMessage(messages=({"type": "text", "text": text},))
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(part.line.messages):
        base = f"{at}.line.messages.{i}"
        if isinstance(item, LineText):
            messages.append({"type": "text", "text": _text(item.text, context, f"{base}.text")})
        else:
            messages.append(_flex(item, context, base))
    return LineMessage(messages=tuple(messages))


def _flex(item: LineFlex, context: Mapping[str, Any], base: str) -> dict[str, Any]:
    def walk(value: Any, field: str) -> Any:
        if isinstance(value, str):
            return _text(value, context, field)
        if isinstance(value, dict):
            return {k: walk(v, f"{field}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{field}.{i}") for i, v in enumerate(value)]
        return value

    return {
        "type": "flex",
        "altText": _text(item.altText, context, f"{base}.altText"),
        "contents": walk(item.contents, f"{base}.contents"),
    }


def _push(part: LanguageContent, context: Mapping[str, Any], at: str) -> PushMessage:
    title, body, url = _common(part, context, at)
    override = part.push
    if override and override.title is not None:
        title = _text(override.title, context, f"{at}.push.title").strip()
    if override and override.body is not None:
        body = _text(override.body, context, f"{at}.push.body").strip()
    elif len(body) > PUSH_DEFAULT_BODY_CHARS:
        body = body[: PUSH_DEFAULT_BODY_CHARS - 1] + "…"
    data: dict[str, str] = {}
    broadcast = context.get("broadcast", {})
    if broadcast.get("id"):
        data["broadcast_id"] = str(broadcast["id"])
    if url:
        data["url"] = url
    for key, source in (override.data if override else {}).items():
        data[key] = _text(source, context, f"{at}.push.data.{key}")
    return PushMessage(
        title=title, body=body, data=data, emergency=bool(broadcast.get("emergency"))
    )


def _email(
    part: LanguageContent, context: Mapping[str, Any], at: str, language: str
) -> EmailMessage:
    title, body, url = _common(part, context, at)
    override = part.email
    subject = title
    if override and override.subject is not None:
        subject = _text(override.subject, context, f"{at}.email.subject").strip()
    if override and override.text is not None:
        text = _text(override.text, context, f"{at}.email.text")
    else:
        text = "\n\n".join(p for p in (body, url) if p)
    if override and override.html is not None:
        raw = render_template(override.html, context, field=f"{at}.email.html", html=True)
        inner = Markup(nh3.clean(raw))  # staff HTML: no scripts, handlers or javascript: links
    else:
        inner = _paragraphs(body)
    html = _LAYOUTS.get_template("email_layout.html").render(
        language=language,
        subject=subject,
        title=title,
        body=inner,
        url=url,
        emergency=bool(context.get("broadcast", {}).get("emergency")),
        city=context.get("city", {}).get("name", ""),
    )
    return EmailMessage(subject=subject, text=text, html=html)


def _paragraphs(text: str) -> Markup:
    """Plain text → escaped HTML paragraphs, single newlines kept as <br>."""
    blocks = [b.strip() for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in b.split("\n")))
        for b in blocks
    )
