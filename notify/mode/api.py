"""HTTP API of the mode area: status, the switch, emergency broadcasts, menus, proposals,
and the JMA telegram intake.

Roles: disaster staff (防災) switch, send emergencies, sync menus and decide proposals (admin
passes every check); any staff may read the status; the app reads `GET /api/mode/public`.
JMA intake: either disaster staff, or the feed relay with the shared secret
`settings.jma_relay_secret` in the `X-Hub-Jma-Secret` header (a relay has no staff account).
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from aiohttp import web
from sqlalchemy import select

from notify.errors import InvalidInput
from notify.mode import proposals
from notify.mode.emergency import send_emergency
from notify.mode.jma_feed import ingest
from notify.mode.runtime import ModeRuntime
from notify.mode.schemas import (
    AcceptIn,
    DismissIn,
    EmergencyIn,
    EmergencyOut,
    IntakeOut,
    MenuOut,
    ProposalOut,
    ProposalQuery,
    PublicModeOut,
    StatusOut,
    SwitchAccepted,
    SwitchIn,
    SyncQueued,
    TelegramResultOut,
)
from notify.mode.status import mode_status, proposal_out, public_mode, switch_out
from notify.mode.switch import request_switch
from notify.mode.tables import ModeMenu
from notify.models import Broadcast, Role
from notify.web.api import ApiRoutes, Call, path_id
from notify.web.auth import require_staff
from notify.web.keys import AREAS, CITY, DB, REDIS, SETTINGS

routes = ApiRoutes("mode")
DISASTER = [Role.DISASTER]
SECRET_HEADER = "X-Hub-Jma-Secret"
XML_TYPES = ("application/xml", "text/xml", "application/atom+xml")


def runtime(request: web.Request) -> ModeRuntime:
    """The web process's runtime (no provider clients: the worker does the LINE/FCM calls)."""
    areas = request.app[AREAS]
    if "mode" not in areas:
        app = request.app
        areas["mode"] = ModeRuntime(app[SETTINGS], app[CITY], app[DB], app[REDIS])
    rt: ModeRuntime = areas["mode"]
    return rt


@routes.get(
    "/api/mode",
    summary="Mode in force and switch progress / 現在のモードと切替の進捗",
    response=StatusOut,
)
async def get_status(request: web.Request, call: Call[None, None]) -> StatusOut:
    return await mode_status(runtime(request))


@routes.get(
    "/api/mode/public",
    summary="Mode for the city app / アプリ向けの現在のモード",
    auth="public",
    response=PublicModeOut,
)
async def get_public_mode(request: web.Request, call: Call[None, None]) -> PublicModeOut:
    return await public_mode(runtime(request))


@routes.post(
    "/api/mode/switch",
    summary="Switch normal ⇄ disaster / モード切替",
    roles=DISASTER,
    body=SwitchIn,
    response=SwitchAccepted,
    status=202,
    errors=[403, 409, 422],
)
async def post_switch(request: web.Request, call: Call[SwitchIn, None]) -> SwitchAccepted:
    assert call.principal is not None
    rt, body = runtime(request), call.body
    if body.emergency is not None and body.mode != "disaster":
        raise InvalidInput(
            "緊急配信は災害モードへの切替時のみ / an emergency message goes "
            "with a switch to disaster mode",
            fields={"emergency": "needs disaster"},
        )
    asked = await request_switch(rt, body.mode, body.reason, call.principal)
    switch = asked.switch
    broadcast_id = None
    if body.emergency is not None:
        e = body.emergency
        broadcast = await send_emergency(
            rt,
            call.principal,
            template=e.template,
            params=e.params,
            wards=e.wards,
            channels=e.channels,
            title=e.title,
            context={"switch_id": switch.id if switch else None},
        )
        broadcast_id = broadcast.id
    return SwitchAccepted(
        changed=asked.created,
        queued=asked.queued,
        switch=await switch_out(rt, switch) if switch is not None else None,
        broadcast_id=broadcast_id,
    )


@routes.post(
    "/api/mode/emergency",
    summary="Emergency broadcast from a prepared message / 定型文から緊急配信",
    roles=DISASTER,
    body=EmergencyIn,
    response=EmergencyOut,
    status=201,
    errors=[403, 404, 422],
)
async def post_emergency(request: web.Request, call: Call[EmergencyIn, None]) -> EmergencyOut:
    assert call.principal is not None
    e = call.body
    broadcast = await send_emergency(
        runtime(request),
        call.principal,
        template=e.template,
        params=e.params,
        wards=e.wards,
        channels=e.channels,
        title=e.title,
    )
    return _emergency_out(broadcast)


def _emergency_out(broadcast: Broadcast) -> EmergencyOut:
    return EmergencyOut(
        broadcast_id=broadcast.id,
        status=broadcast.status,
        priority=broadcast.priority,
        send_at=broadcast.send_at,
    )


@routes.get(
    "/api/mode/menus",
    summary="Configured rich menus and their LINE ids / リッチメニュー",
    response=list[MenuOut],
)
async def get_menus(request: web.Request, call: Call[None, None]) -> list[MenuOut]:
    rt = runtime(request)
    async with rt.db.sessionmaker() as session:
        rows = {r.key: r for r in (await session.execute(select(ModeMenu))).scalars()}
    return [
        MenuOut(
            key=m.key,
            mode=m.mode,
            entry=m.entry,
            counterpart=m.counterpart,
            alias=m.alias,
            name=m.name,
            rich_menu_id=rows[m.key].rich_menu_id if m.key in rows else None,
            synced_at=rows[m.key].synced_at if m.key in rows else None,
        )
        for m in rt.catalog().menus
    ]


@routes.get(
    "/api/mode/menus/{key}",
    summary="One configured rich menu / リッチメニュー",
    response=MenuOut,
    errors=[404],
)
async def get_menu(request: web.Request, call: Call[None, None]) -> MenuOut:
    key = call.path["key"]
    menus = await get_menus(request, call)
    found = next((m for m in menus if m.key == key), None)
    if found is None:
        runtime(request).catalog().get(key)  # raises NotFound naming the menu
    assert found is not None
    return found


@routes.post(
    "/api/mode/menus/sync",
    summary="Sync the rich menus to LINE (a job) / リッチメニューを LINE に同期",
    roles=DISASTER,
    response=SyncQueued,
    status=202,
)
async def post_sync(request: web.Request, call: Call[None, None]) -> SyncQueued:
    job_id = f"mode-sync-{uuid.uuid4().hex[:12]}"
    await request.app[REDIS].enqueue_job("mode_sync_menus", _job_id=job_id)
    return SyncQueued(job_id=job_id)


@routes.get(
    "/api/mode/proposals",
    summary="Switch proposals (JMA) / 切替の提案",
    roles=DISASTER,
    query=ProposalQuery,
    response=list[ProposalOut],
)
async def get_proposals(request: web.Request, call: Call[None, ProposalQuery]) -> list[ProposalOut]:
    rows = await proposals.list_proposals(runtime(request), call.query.status)
    return [proposal_out(p) for p in rows]


def _proposal_id(call: Call[Any, Any]) -> int:
    raw = call.path["id"]
    return path_id(raw, f"提案 {raw[:40]} はありません / no proposal {raw[:40]}")


@routes.post(
    "/api/mode/proposals/{id}/accept",
    summary="Accept a proposal / 提案を承認して切替",
    roles=DISASTER,
    body=AcceptIn,
    response=ProposalOut,
    errors=[404, 409, 422],
)
async def accept_proposal(request: web.Request, call: Call[AcceptIn, None]) -> ProposalOut:
    assert call.principal is not None
    body = call.body
    done = await proposals.accept(
        runtime(request),
        call.principal,
        _proposal_id(call),
        reason=body.reason,
        send_message=body.send_message,
        params=body.params,
        channels=body.channels,
    )
    return proposal_out(done.proposal)


@routes.post(
    "/api/mode/proposals/{id}/dismiss",
    summary="Dismiss a proposal / 提案を見送る",
    roles=DISASTER,
    body=DismissIn,
    response=ProposalOut,
    errors=[404, 409, 422],
)
async def dismiss_proposal(request: web.Request, call: Call[DismissIn, None]) -> ProposalOut:
    assert call.principal is not None
    row = await proposals.dismiss(
        runtime(request), call.principal, _proposal_id(call), call.body.note
    )
    return proposal_out(row)


@routes.post(
    "/api/jma/telegrams",
    summary="JMA telegram or Atom feed in / 気象庁電文の受信",
    auth="public",
    raw_body="application/xml",
    response=IntakeOut,
    errors=[401, 403, 413, 415, 422],
)
async def post_telegram(request: web.Request, call: Call[None, None]) -> IntakeOut:
    secret = request.app[SETTINGS].jma_relay_secret
    given = request.headers.get(SECRET_HEADER, "")
    if not (secret and given and hmac.compare_digest(secret.encode(), given.encode())):
        await require_staff(request, DISASTER)
    if request.content_type not in XML_TYPES:
        from notify.web.api import UnsupportedMediaType

        raise UnsupportedMediaType("Content-Type は application/xml にしてください / expected XML")
    results = await ingest(runtime(request), await request.read(), source="http")
    return IntakeOut(results=[TelegramResultOut(**vars(r)) for r in results])
