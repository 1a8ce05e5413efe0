"""Test sends: a broadcast, rendered and sent to the calling staff member's own test endpoints.

Goes straight through the channel adapters (`channels.registry`), not the delivery engine: no
snapshot, no quiet hours, no statistics. Each message is marked 【テスト】 so nobody mistakes it
for the real one. A channel that is not configured is reported, not raised.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

from channels.base import (
    Channel,
    ChannelName,
    EmailMessage,
    LineMessage,
    PushMessage,
    Recipient,
    SendContext,
)
from notify.broadcasts.schemas import TestSendResult
from notify.broadcasts.tables import StaffTestEndpoint
from notify.city import CityConfig
from notify.compose.content import Content
from notify.compose.context import message_context
from notify.compose.limits import RenderedMessage
from notify.compose.render import render_message
from notify.errors import ChannelError, InvalidInput
from notify.models import Broadcast
from notify.settings import Settings

MARK = "【テスト】"


def mark_as_test(message: RenderedMessage) -> RenderedMessage:
    if isinstance(message, PushMessage):
        return dataclasses.replace(message, title=MARK + message.title)
    if isinstance(message, EmailMessage):
        return dataclasses.replace(message, subject=MARK + message.subject)
    first, *rest = message.messages
    if first.get("type") == "text":
        first = {**first, "text": MARK + "\n" + str(first["text"])}
    return LineMessage(messages=(first, *rest))


async def send_tests(
    broadcast: Broadcast,
    endpoints: Sequence[StaffTestEndpoint],
    *,
    city: CityConfig,
    settings: Settings,
) -> list[TestSendResult]:
    from channels.registry import build_channels

    wanted = {ChannelName(c) for c in broadcast.channels}
    targets = [e for e in endpoints if e.channel in wanted]
    adapters = build_channels(settings, only={ChannelName(e.channel) for e in targets})
    try:
        return [
            await _send_one(broadcast, e, adapters.get(ChannelName(e.channel)), city)
            for e in targets
        ]
    finally:
        for adapter in adapters.values():
            await adapter.close()


async def _send_one(
    broadcast: Broadcast, endpoint: StaffTestEndpoint, adapter: Channel | None, city: CityConfig
) -> TestSendResult:
    def result(outcome: str, detail: str | None = None) -> TestSendResult:
        return TestSendResult(
            test_endpoint_id=endpoint.id,
            channel=endpoint.channel,
            outcome=outcome,  # type: ignore[arg-type]
            detail=detail,
        )

    if adapter is None:
        return result("error", f"配信経路 {endpoint.channel} が設定されていません / not configured")
    context = message_context(
        city,
        language=endpoint.language,
        broadcast_id=broadcast.id,
        title=broadcast.title,
        priority=broadcast.priority,
        send_at=broadcast.send_at,
    )
    try:
        message = render_message(
            Content(broadcast.content), endpoint.channel, endpoint.language, context
        )
    except InvalidInput as exc:
        return result("error", "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message)
    recipient = Recipient(
        endpoint_id=endpoint.id, address=endpoint.address, language=endpoint.language
    )
    send_context = SendContext(
        broadcast_id=broadcast.id,
        idempotency_key=str(uuid.uuid4()),
        emergency=broadcast.priority == "emergency",
    )
    try:
        [delivery] = await adapter.send_batch([recipient], mark_as_test(message), send_context)
    except ChannelError as exc:
        return result("error", exc.message)
    return result(delivery.outcome.value, delivery.detail or delivery.provider_id)
