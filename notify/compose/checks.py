"""Checks run before a broadcast may be approved: every rendering, within every limit.

`check_renderings` renders each language the content has, on each of the broadcast's
channels, once per ward (ward names differ in length and `{% if %}` may branch on them) and
once for a resident without a ward, and collects every problem by field path.
`validate_on_line` then asks LINE itself (`/v2/bot/message/validate/multicast`) about each
language's LINE rendering (`line_validator` gives the call).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp

from channels.base import LineMessage
from notify.city import CityConfig
from notify.compose.content import Content
from notify.compose.context import message_context
from notify.compose.render import render_message
from notify.errors import (
    ChannelError,
    InvalidInput,
    PermanentChannelError,
    RateLimited,
    TransientChannelError,
)

LineValidator = Callable[[LineMessage], Awaitable[None]]


@dataclass(slots=True)
class RenderCheck:
    problems: dict[str, str] = field(default_factory=dict)
    line_messages: dict[str, LineMessage] = field(default_factory=dict)  # by language


def check_renderings(
    content: Content,
    *,
    channels: Sequence[str],
    city: CityConfig,
    broadcast_id: int | None = None,
    title: str = "",
    priority: str = "normal",
    send_at: dt.datetime | None = None,
) -> RenderCheck:
    result = RenderCheck()
    wards: Iterable[str | None] = [*(w.code for w in city.wards), None]
    for language in content.root:
        for ward in wards:
            context = message_context(
                city,
                language=language,
                ward_code=ward,
                broadcast_id=broadcast_id,
                title=title,
                priority=priority,
                send_at=send_at,
            )
            for channel in channels:
                try:
                    message = render_message(content, channel, language, context)
                except InvalidInput as exc:
                    for key, reason in exc.fields.items():
                        where = f" (ward {ward})" if ward else ""
                        result.problems.setdefault(key, reason + where)
                    continue
                if isinstance(message, LineMessage):
                    result.line_messages.setdefault(language, message)
    return result


async def validate_on_line(
    validate: LineValidator, messages: dict[str, LineMessage]
) -> dict[str, str]:
    """Ask LINE to validate each language's messages.

    A rejection (400) becomes a problem on `content.<lang>.line`; anything else (outage, bad
    token, rate limit) is not the staff's fault and is reported under `line_validation`.
    """
    problems: dict[str, str] = {}
    for language, message in messages.items():
        try:
            await validate(message)
        except PermanentChannelError as exc:
            if exc.provider_code == "http_400":
                problems[f"content.{language}.line"] = f"LINE rejected the message: {exc.message}"
            else:
                problems["line_validation"] = f"LINE could not validate: {exc.message}"
        except ChannelError as exc:
            problems["line_validation"] = f"LINE could not validate now: {exc.message}"
    return problems


@asynccontextmanager
async def line_validator(
    api_url: str, access_token: str, *, timeout_s: float = 10.0
) -> AsyncIterator[LineValidator]:
    """The LINE adapter's `validate_messages` when it has one, else a direct call to
    `/v2/bot/message/validate/multicast` with the same error mapping."""
    from channels.line import LineChannel

    if hasattr(LineChannel, "validate_messages"):
        channel = LineChannel(api_url=api_url, data_url=api_url, channel_access_token=access_token)
        try:
            yield getattr(channel, "validate_messages")  # noqa: B009 - not every adapter version has it
        finally:
            await channel.close()
        return
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:

        async def validate(message: LineMessage) -> None:
            await _post_validate(http, api_url, access_token, message)

        yield validate


async def _post_validate(
    http: aiohttp.ClientSession, api_url: str, token: str, message: LineMessage
) -> None:
    url = api_url.rstrip("/") + "/v2/bot/message/validate/multicast"
    body = {"messages": [dict(m) for m in message.messages]}
    try:
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
            if resp.status == 200:
                return
            text = (await resp.text())[:500]
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientChannelError(
            f"LINE unreachable: {exc!r}", provider_code="connection"
        ) from exc
    detail = _describe(text)
    if resp.status == 429:
        raise RateLimited(f"LINE 429: {detail}", provider_code="rate_limited")
    if resp.status >= 500:
        raise TransientChannelError(
            f"LINE {resp.status}: {detail}", provider_code=f"http_{resp.status}"
        )
    raise PermanentChannelError(
        f"LINE {resp.status}: {detail}", provider_code=f"http_{resp.status}"
    )


def _describe(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if not isinstance(body, dict):
        return text
    details = "; ".join(
        f"{d.get('property', '')}: {d.get('message', '')}"
        for d in body.get("details", [])
        if isinstance(d, dict)
    )
    return f"{body.get('message', '')} {details}".strip()
