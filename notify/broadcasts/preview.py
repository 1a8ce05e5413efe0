"""Previews and reach estimates: what a broadcast will look like, and for how many people."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import EmailMessage, LineMessage, PushMessage
from notify.broadcasts.schemas import (
    EmailPreview,
    LinePreview,
    PreviewOut,
    PushPreview,
    ReachOut,
    SampleResident,
)
from notify.city import CityConfig
from notify.compose.content import Content
from notify.compose.context import message_context
from notify.compose.render import render_message
from notify.db import utcnow
from notify.errors import InvalidInput, NotFound
from notify.models import Resident
from segments.compile import segment_residents, send_day
from segments.reach import ChannelPolicy, estimate_reach


async def pick_sample(
    session: AsyncSession,
    city: CityConfig,
    *,
    segment: dict[str, Any] | Any,
    send_at: dt.datetime,
    resident_id: int | None,
    ward_code: str | None,
    language: str,
) -> SampleResident:
    """The resident asked for, else the first one the segment selects, else nobody."""
    if ward_code is not None and ward_code not in city.ward_codes:
        raise InvalidInput("不明な区です / unknown ward", fields={"ward_code": "unknown ward code"})
    resident: Resident | None = None
    if resident_id is not None:
        resident = await session.get(Resident, resident_id)
        if resident is None:
            raise NotFound(
                "住民が見つかりません / no such resident", fields={"resident_id": "unknown"}
            )
    else:
        first = segment_residents(segment, send_date=send_at, city=city).order_by(Resident.id)
        found = await session.scalar(first.limit(1))
        resident = await session.get(Resident, found) if found is not None else None
    return SampleResident(
        resident_id=resident.id if resident else None,
        ward_code=ward_code or (resident.ward_code if resident else None),
        language=language,
    )


def render_preview(
    content: Content,
    channels: Sequence[str],
    city: CityConfig,
    sample: SampleResident,
    *,
    broadcast_id: int | None,
    title: str,
    priority: str,
    send_at: dt.datetime | None,
) -> PreviewOut:
    context = message_context(
        city,
        language=sample.language,
        ward_code=sample.ward_code,
        broadcast_id=broadcast_id,
        title=title,
        priority=priority,
        send_at=send_at,
    )
    out = PreviewOut(sample=sample)
    for channel in channels:
        try:
            message = render_message(content, channel, sample.language, context)
        except InvalidInput as exc:
            out.problems.update(exc.fields)
            continue
        if isinstance(message, LineMessage):
            out.line = LinePreview(messages=[dict(m) for m in message.messages])
        elif isinstance(message, PushMessage):
            out.fcm = PushPreview(
                title=message.title,
                body=message.body,
                data=dict(message.data),
                emergency=message.emergency,
            )
        elif isinstance(message, EmailMessage):
            out.email = EmailPreview(subject=message.subject, text=message.text, html=message.html)
    return out


async def reach_of(
    session: AsyncSession,
    city: CityConfig,
    *,
    segment: Any,
    channels: Sequence[str],
    policy: ChannelPolicy,
    topic: str | None,
    priority: str,
    send_at: dt.datetime | None,
) -> ReachOut:
    when = send_at or utcnow()
    reach = await estimate_reach(
        session,
        segment,
        send_date=when,
        city=city,
        channels=channels,
        policy=policy,
        topic=topic,
        emergency=priority == "emergency",
    )
    return ReachOut(
        send_date=send_day(when, city),
        total=reach.total,
        reachable=reach.reachable,
        by_channel=reach.by_channel,
        endpoints=reach.endpoints,
        by_ward=reach.by_ward,
    )
