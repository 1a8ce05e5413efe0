"""Broadcasts API, part 4: prepared messages (定型文) and drafts made from them."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from notify.broadcasts import service
from notify.broadcasts.lifecycle import COMPOSERS, READERS
from notify.broadcasts.routes import routes
from notify.broadcasts.schemas import BroadcastOut, ChannelName, InstantiateIn, Policy, PreparedOut
from notify.compose.prepared import prepared_messages
from notify.web.api import Call
from notify.web.keys import CITY, DB
from segments.rules import Rule


class PreparedBroadcastIn(InstantiateIn):
    segment: Rule | None = None
    channels: list[ChannelName] | None = Field(default=None, min_length=1, max_length=3)
    channel_policy: Policy = "all"
    title: str | None = Field(default=None, min_length=1, max_length=200)


@routes.get(
    "/api/message-templates",
    summary="Prepared messages (emergency ones included) / 定型文の一覧",
    roles=READERS,
    response=list[PreparedOut],
)
async def list_prepared(request: web.Request, call: Call[None, None]) -> list[PreparedOut]:
    return [
        PreparedOut(
            key=m.key,
            name=m.name.model_dump(),
            priority=m.priority,
            topic=m.topic,
            channels=list(m.channels),
            params=[p.model_dump() for p in m.params],
            content=m.content,
        )
        for m in prepared_messages()
    ]


@routes.post(
    "/api/message-templates/{key}/broadcasts",
    summary="Create a draft from a prepared message / 定型文から下書きを作成",
    roles=COMPOSERS,
    body=PreparedBroadcastIn,
    response=BroadcastOut,
    status=201,
    errors=[403, 404, 415],
)
async def create_from_prepared(
    request: web.Request, call: Call[PreparedBroadcastIn, None]
) -> BroadcastOut:
    assert call.principal is not None
    city, body = request.app[CITY], call.body
    async with request.app[DB].transaction() as session:
        broadcast = await service.create_from_prepared(
            session,
            call.principal,
            call.path["key"],
            body.params,
            city,
            segment=body.segment,
            channels=body.channels,
            channel_policy=body.channel_policy,
            title=body.title,
        )
    return service.to_out(broadcast, city)
