"""Broadcast drafts: create, edit, read, and the checks a broadcast must pass.

Saving checks the shape, the template syntax and the segment against the city (422 naming the
field). Submitting and approving also render every language × channel × ward within the
channels' limits and ask LINE to validate the LINE messages (`approval_checks`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notify import audit
from notify.broadcasts.lifecycle import Status, bump, check_may_compose, check_transition
from notify.broadcasts.schemas import BroadcastIn, BroadcastOut, BroadcastPatch
from notify.city import CityConfig
from notify.compose.checks import check_renderings, line_validator, validate_on_line
from notify.compose.content import Content, parse_content
from notify.compose.prepared import prepared_message
from notify.errors import InvalidInput, NotFound, TemplateError
from notify.models import Broadcast
from notify.settings import Settings
from notify.web.auth import Principal
from segments.rules import EVERYONE, Rule, describe, parse_rule, rule_to_json

FIELDS = ("title", "priority", "topic", "channel_policy", "send_at")
NULLABLE = frozenset({"topic", "send_at"})


def check_definition(
    city: CityConfig,
    *,
    content: Content,
    segment: Rule | dict[str, Any],
    topic: str | None,
    channels: Sequence[str],
) -> tuple[Content, Rule]:
    problems: dict[str, str] = {}
    template_problems: dict[str, str] = {}
    try:
        content = parse_content(content, city)
    except TemplateError as exc:
        template_problems.update(exc.fields)
    except InvalidInput as exc:
        problems.update(exc.fields)
    rule: Rule | None = None
    try:
        rule = parse_rule(segment, city)
    except InvalidInput as exc:
        problems.update(exc.fields)
    if topic is not None and topic not in city.topic_keys:
        problems["topic"] = f"unknown topic {topic!r} (known: {', '.join(sorted(city.topic_keys))})"
    if len(set(channels)) != len(channels):
        problems["channels"] = "each channel at most once"
    if template_problems and not problems:
        raise TemplateError(
            "テンプレートに誤りがあります / template errors", fields=template_problems
        )
    if problems or template_problems or rule is None:
        raise InvalidInput(
            "入力内容に誤りがあります / invalid broadcast", fields=problems | template_problems
        )
    return content, rule


async def create_broadcast(
    session: AsyncSession, actor: Principal, data: BroadcastIn, city: CityConfig
) -> Broadcast:
    check_may_compose(actor, data.priority)
    content, rule = check_definition(
        city, content=data.content, segment=data.segment, topic=data.topic, channels=data.channels
    )
    broadcast = Broadcast(
        title=data.title,
        status=Status.DRAFT,
        priority=data.priority,
        topic=data.topic,
        content=content.model_dump(mode="json", exclude_none=True),
        segment=rule_to_json(rule),
        channels=list(data.channels),
        channel_policy=data.channel_policy,
        send_at=data.send_at.astimezone(dt.UTC) if data.send_at else None,
        version=1,
        created_by=actor.staff_id,
    )
    session.add(broadcast)
    await session.flush()
    audit.record(
        session,
        actor,
        "broadcast.create",
        target_type="broadcast",
        target_id=broadcast.id,
        title=data.title,
        priority=data.priority,
    )
    return broadcast


async def update_broadcast(
    session: AsyncSession,
    actor: Principal,
    broadcast: Broadcast,
    patch: BroadcastPatch,
    city: CityConfig,
) -> Broadcast:
    check_transition(broadcast, "edit", patch.version)
    given = patch.model_fields_set - {"version"}
    check_may_compose(actor, patch.priority or broadcast.priority)
    content, rule = check_definition(
        city,
        content=patch.content if patch.content is not None else Content(broadcast.content),
        segment=patch.segment if patch.segment is not None else broadcast.segment,
        topic=patch.topic if "topic" in given else broadcast.topic,
        channels=patch.channels or broadcast.channels,
    )
    for name in FIELDS:
        value = getattr(patch, name)
        if name in given and (value is not None or name in NULLABLE):
            if isinstance(value, dt.datetime):
                value = value.astimezone(dt.UTC)
            setattr(broadcast, name, value)
    broadcast.content = content.model_dump(mode="json", exclude_none=True)
    broadcast.segment = rule_to_json(rule)
    if patch.channels:
        broadcast.channels = list(patch.channels)
    broadcast.review_comment = None
    bump(broadcast, Status.DRAFT)
    audit.record(
        session,
        actor,
        "broadcast.edit",
        target_type="broadcast",
        target_id=broadcast.id,
        fields=sorted(given),
        version=broadcast.version,
    )
    return broadcast


async def load(session: AsyncSession, broadcast_id: int, *, for_update: bool = False) -> Broadcast:
    query = select(Broadcast).where(Broadcast.id == broadcast_id)
    if for_update:
        query = query.with_for_update()
    broadcast = (await session.execute(query)).scalar_one_or_none()
    if broadcast is None:
        raise NotFound(
            f"配信 {broadcast_id} はありません / no broadcast {broadcast_id}",
            fields={"id": "unknown broadcast"},
        )
    return broadcast


async def approval_checks(broadcast: Broadcast, city: CityConfig, settings: Settings) -> None:
    """Every rendering within limits, and LINE's own validation; InvalidInput otherwise."""
    content, _ = check_definition(
        city,
        content=Content(broadcast.content),
        segment=broadcast.segment,
        topic=broadcast.topic,
        channels=broadcast.channels,
    )
    result = check_renderings(
        content,
        channels=broadcast.channels,
        city=city,
        broadcast_id=broadcast.id,
        title=broadcast.title,
        priority=broadcast.priority,
        send_at=broadcast.send_at,
    )
    problems = dict(result.problems)
    if not problems and result.line_messages and settings.line_channel_access_token:
        async with line_validator(
            settings.line_api_url, settings.line_channel_access_token
        ) as validate:
            problems.update(await validate_on_line(validate, result.line_messages))
    if problems:
        raise InvalidInput(
            "配信できない内容があります / the message cannot be sent as it is", fields=problems
        )


def to_out(broadcast: Broadcast, city: CityConfig) -> BroadcastOut:
    try:
        description = describe(parse_rule(broadcast.segment, city), city)
    except InvalidInput:  # the city config changed since: show, do not crash
        description = "(条件が現在の市の設定と合いません / segment no longer valid)"
    return BroadcastOut(
        id=broadcast.id,
        title=broadcast.title,
        status=broadcast.status,  # type: ignore[arg-type]
        priority=broadcast.priority,  # type: ignore[arg-type]
        topic=broadcast.topic,
        content=broadcast.content,
        segment=broadcast.segment or rule_to_json(parse_rule({}, city)),
        segment_description=description,
        channels=broadcast.channels,
        channel_policy=broadcast.channel_policy,  # type: ignore[arg-type]
        send_at=broadcast.send_at,
        version=broadcast.version,
        created_by=broadcast.created_by,
        submitted_by=broadcast.submitted_by,
        approved_by=broadcast.approved_by,
        review_comment=broadcast.review_comment,
        error=broadcast.error,
        created_at=broadcast.created_at,
        updated_at=broadcast.updated_at,
        submitted_at=broadcast.submitted_at,
        approved_at=broadcast.approved_at,
        started_at=broadcast.started_at,
        finished_at=broadcast.finished_at,
    )


async def create_from_prepared(
    session: AsyncSession,
    actor: Principal,
    key: str,
    params: dict[str, str],
    city: CityConfig,
    *,
    segment: Rule | None = None,
    channels: Sequence[str] | None = None,
    channel_policy: str = "all",
    title: str | None = None,
) -> Broadcast:
    """A draft from a prepared message (templates/messages/<key>.yaml), e.g. 避難指示."""
    message = prepared_message(key)
    content = message.instantiate(params)
    data = BroadcastIn.model_validate(
        {
            "title": title or f"{message.name.ja}: {next(iter(params.values()), '')}".rstrip(": "),
            "priority": message.priority,
            "topic": message.topic,
            "content": content,
            "segment": segment or EVERYONE,
            "channels": list(channels or message.channels),
            "channel_policy": channel_policy,
        }
    )
    broadcast = await create_broadcast(session, actor, data, city)
    audit.record(
        session,
        actor,
        "broadcast.from_prepared",
        target_type="broadcast",
        target_id=broadcast.id,
        key=key,
    )
    return broadcast
