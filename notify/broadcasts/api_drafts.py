"""Broadcasts API, part 1: list, create, read, edit, history, reach and previews."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from notify.broadcasts import service
from notify.broadcasts.lifecycle import COMPOSERS, READERS
from notify.broadcasts.preview import pick_sample, reach_of, render_preview
from notify.broadcasts.routes import routes
from notify.broadcasts.schemas import (
    BroadcastIn,
    BroadcastList,
    BroadcastListItem,
    BroadcastOut,
    BroadcastPatch,
    ContentPreviewIn,
    HistoryEntry,
    ListQuery,
    PreviewIn,
    PreviewOut,
    ReachIn,
    ReachOut,
)
from notify.compose.content import Content, parse_content
from notify.db import utcnow
from notify.errors import BROADCAST_NOT_FOUND, InvalidInput
from notify.models import AuditEntry, Broadcast
from notify.web.api import Call, path_id
from notify.web.keys import CITY, DB
from segments.rules import parse_rule

ID = "/api/broadcasts/{id:\\d+}"


def broadcast_id(call: Call[Any, Any]) -> int:
    return path_id(call.path["id"], BROADCAST_NOT_FOUND)


@routes.get(
    "/api/broadcasts",
    summary="List broadcasts, newest first / 配信一覧",
    roles=READERS,
    query=ListQuery,
    response=BroadcastList,
)
async def list_broadcasts(request: web.Request, call: Call[None, ListQuery]) -> BroadcastList:
    query = select(Broadcast)
    if call.query.status:
        query = query.where(Broadcast.status == call.query.status)
    async with request.app[DB].sessionmaker() as session:
        total = (
            await session.scalar(query.with_only_columns(func.count(), maintain_column_froms=True))
            or 0
        )
        page = query.order_by(Broadcast.id.desc()).limit(call.query.limit).offset(call.query.offset)
        rows = (await session.scalars(page)).all()
    items = [BroadcastListItem.model_validate(r, from_attributes=True) for r in rows]
    return BroadcastList(items=items, total=total)


@routes.post(
    "/api/broadcasts",
    summary="Create a draft / 下書きを作成",
    roles=COMPOSERS,
    body=BroadcastIn,
    response=BroadcastOut,
    status=201,
    errors=[415],
)
async def create_broadcast(request: web.Request, call: Call[BroadcastIn, None]) -> BroadcastOut:
    assert call.principal is not None
    city = request.app[CITY]
    async with request.app[DB].transaction() as session:
        broadcast = await service.create_broadcast(session, call.principal, call.body, city)
    return service.to_out(broadcast, city)


@routes.get(
    ID, summary="One broadcast / 配信の詳細", roles=READERS, response=BroadcastOut, errors=[404]
)
async def get_broadcast(request: web.Request, call: Call[None, None]) -> BroadcastOut:
    async with request.app[DB].sessionmaker() as session:
        broadcast = await service.load(session, broadcast_id(call))
    return service.to_out(broadcast, request.app[CITY])


@routes.patch(
    ID,
    summary="Edit a draft (drafts only) / 下書きを編集",
    roles=COMPOSERS,
    body=BroadcastPatch,
    response=BroadcastOut,
    errors=[404, 409, 415],
)
async def edit_broadcast(request: web.Request, call: Call[BroadcastPatch, None]) -> BroadcastOut:
    assert call.principal is not None
    city = request.app[CITY]
    async with request.app[DB].transaction() as session:
        broadcast = await service.load(session, broadcast_id(call), for_update=True)
        await service.update_broadcast(session, call.principal, broadcast, call.body, city)
    return service.to_out(broadcast, city)


@routes.get(
    ID + "/history",
    summary="Who did what, when / 操作履歴",
    roles=READERS,
    response=list[HistoryEntry],
    errors=[404],
)
async def broadcast_history(request: web.Request, call: Call[None, None]) -> list[HistoryEntry]:
    async with request.app[DB].sessionmaker() as session:
        await service.load(session, broadcast_id(call))
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_type == "broadcast")
            .where(AuditEntry.target_id == str(broadcast_id(call)))
            .order_by(AuditEntry.id)
        )
        return [HistoryEntry.model_validate(r, from_attributes=True) for r in rows]


@routes.get(
    ID + "/reach",
    summary="Reach estimate of a saved broadcast / 配信対象の見込み数",
    roles=READERS,
    response=ReachOut,
    errors=[404],
)
async def broadcast_reach(request: web.Request, call: Call[None, None]) -> ReachOut:
    async with request.app[DB].sessionmaker() as session:
        b = await service.load(session, broadcast_id(call))
        return await reach_of(
            session,
            request.app[CITY],
            segment=b.segment,
            channels=b.channels,
            policy="preferred" if b.channel_policy == "preferred" else "all",
            topic=b.topic,
            priority=b.priority,
            send_at=b.send_at,
        )


@routes.post(
    "/api/segments/reach",
    summary="Reach estimate of an unsaved segment / 条件の見込み数",
    roles=READERS,
    body=ReachIn,
    response=ReachOut,
    errors=[415],
)
async def segment_reach(request: web.Request, call: Call[ReachIn, None]) -> ReachOut:
    city = request.app[CITY]
    rule = parse_rule(call.body.segment, city)
    if call.body.topic is not None and call.body.topic not in city.topic_keys:
        raise InvalidInput("不明な話題です / unknown topic", fields={"topic": "unknown topic"})
    async with request.app[DB].sessionmaker() as session:
        return await reach_of(
            session,
            city,
            segment=rule,
            channels=call.body.channels,
            policy=call.body.channel_policy,
            topic=call.body.topic,
            priority=call.body.priority,
            send_at=call.body.send_at,
        )


@routes.post(
    ID + "/preview",
    summary="Render a saved broadcast for a sample resident / プレビュー",
    roles=READERS,
    body=PreviewIn,
    response=PreviewOut,
    errors=[404, 415],
)
async def preview_broadcast(request: web.Request, call: Call[PreviewIn, None]) -> PreviewOut:
    city = request.app[CITY]
    async with request.app[DB].sessionmaker() as session:
        b = await service.load(session, broadcast_id(call))
        sample = await pick_sample(
            session,
            city,
            segment=b.segment,
            send_at=b.send_at or utcnow(),
            resident_id=call.body.resident_id,
            ward_code=call.body.ward_code,
            language=call.body.language,
        )
    return render_preview(
        Content(b.content),
        b.channels,
        city,
        sample,
        broadcast_id=b.id,
        title=b.title,
        priority=b.priority,
        send_at=b.send_at,
    )


@routes.post(
    "/api/broadcasts/preview",
    summary="Render unsaved content (while composing) / 作成中のプレビュー",
    roles=COMPOSERS,
    body=ContentPreviewIn,
    response=PreviewOut,
    errors=[404, 415],
)
async def preview_content(request: web.Request, call: Call[ContentPreviewIn, None]) -> PreviewOut:
    city = request.app[CITY]
    content = parse_content(call.body.content, city)
    async with request.app[DB].sessionmaker() as session:
        sample = await pick_sample(
            session,
            city,
            segment={},
            send_at=utcnow(),
            resident_id=call.body.resident_id,
            ward_code=call.body.ward_code,
            language=call.body.language,
        )
    return render_preview(
        content,
        call.body.channels,
        city,
        sample,
        broadcast_id=None,
        title=call.body.title,
        priority=call.body.priority,
        send_at=None,
    )
