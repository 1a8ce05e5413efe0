"""Broadcasts API, part 3: a staff member's own test endpoints, and test sends to them."""

from __future__ import annotations

import re

from aiohttp import web
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from notify import audit
from notify.broadcasts import service
from notify.broadcasts.api_drafts import ID, broadcast_id
from notify.broadcasts.lifecycle import COMPOSERS, TEST_SEND_FROM, check_may_operate
from notify.broadcasts.routes import routes
from notify.broadcasts.schemas import TestEndpointIn, TestEndpointOut, TestSendOut
from notify.broadcasts.tables import StaffTestEndpoint
from notify.broadcasts.test_send import send_tests
from notify.errors import Conflict, InvalidInput, NotFound
from notify.web.api import Call, path_id
from notify.web.keys import CITY, DB, SETTINGS

LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")


def _checked_address(body: TestEndpointIn) -> str:
    address = body.address.strip()
    if body.channel == "line" and not LINE_USER_ID.match(address):
        raise InvalidInput(
            "LINE のユーザーIDではありません / not a LINE user id",
            fields={"address": "a LINE user id is U followed by 32 hex digits"},
        )
    if body.channel == "email":
        try:
            address = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise InvalidInput(
                "メールアドレスが正しくありません / invalid email address",
                fields={"address": str(exc)},
            ) from exc
    return address


@routes.get(
    "/api/me/test-endpoints",
    summary="My test endpoints / 自分のテスト送信先",
    roles=COMPOSERS,
    response=list[TestEndpointOut],
)
async def list_test_endpoints(
    request: web.Request, call: Call[None, None]
) -> list[TestEndpointOut]:
    assert call.principal is not None
    async with request.app[DB].sessionmaker() as session:
        rows = await session.scalars(
            select(StaffTestEndpoint)
            .where(StaffTestEndpoint.staff_id == call.principal.staff_id)
            .order_by(StaffTestEndpoint.id)
        )
        return [TestEndpointOut.model_validate(r, from_attributes=True) for r in rows]


@routes.post(
    "/api/me/test-endpoints",
    summary="Add a test endpoint of my own / テスト送信先を追加",
    roles=COMPOSERS,
    body=TestEndpointIn,
    response=TestEndpointOut,
    status=201,
    errors=[409, 415],
)
async def add_test_endpoint(
    request: web.Request, call: Call[TestEndpointIn, None]
) -> TestEndpointOut:
    assert call.principal is not None and call.principal.staff_id is not None
    row = StaffTestEndpoint(
        staff_id=call.principal.staff_id,
        channel=call.body.channel,
        address=_checked_address(call.body),
        language=call.body.language,
        label=call.body.label,
    )
    try:
        async with request.app[DB].transaction() as session:
            session.add(row)
            await session.flush()
            audit.record(
                session,
                call.principal,
                "test_endpoint.add",
                target_type="test_endpoint",
                target_id=row.id,
                channel=row.channel,
            )
    except IntegrityError as exc:
        raise Conflict(
            "登録済みです / already registered", fields={"address": "already registered"}
        ) from exc
    return TestEndpointOut.model_validate(row, from_attributes=True)


@routes.delete(
    "/api/me/test-endpoints/{endpoint_id:\\d+}",
    summary="Remove one of my test endpoints / テスト送信先を削除",
    roles=COMPOSERS,
    errors=[404],
)
async def remove_test_endpoint(request: web.Request, call: Call[None, None]) -> None:
    assert call.principal is not None
    async with request.app[DB].transaction() as session:
        row = await session.get(
            StaffTestEndpoint,
            path_id(call.path["endpoint_id"], "テスト宛先がありません / no such test endpoint"),
        )
        if row is None or row.staff_id != call.principal.staff_id:
            raise NotFound(
                "テスト送信先がありません / no such test endpoint",
                fields={"endpoint_id": "unknown"},
            )
        await session.delete(row)
        audit.record(
            session,
            call.principal,
            "test_endpoint.remove",
            target_type="test_endpoint",
            target_id=row.id,
        )


@routes.post(
    ID + "/test-send",
    summary="Send to my own test endpoints / テスト送信",
    roles=COMPOSERS,
    response=TestSendOut,
    errors=[404, 409],
)
async def test_send(request: web.Request, call: Call[None, None]) -> TestSendOut:
    assert call.principal is not None
    async with request.app[DB].sessionmaker() as session:
        broadcast = await service.load(session, broadcast_id(call))
        check_may_operate(call.principal, broadcast)
        if broadcast.status not in TEST_SEND_FROM:
            raise Conflict(
                "送信済み・中止済みの配信はテストできません / too late for a test send",
                fields={"status": f"is {broadcast.status}"},
            )
        endpoints = (
            await session.scalars(
                select(StaffTestEndpoint).where(
                    StaffTestEndpoint.staff_id == call.principal.staff_id
                )
            )
        ).all()
    if not any(e.channel in broadcast.channels for e in endpoints):
        raise Conflict(
            "この配信の経路にテスト送信先がありません / no test endpoint on its channels",
            fields={"test_endpoints": "add one with POST /api/me/test-endpoints"},
        )
    results = await send_tests(
        broadcast, endpoints, city=request.app[CITY], settings=request.app[SETTINGS]
    )
    async with request.app[DB].transaction() as session:
        audit.record(
            session,
            call.principal,
            "broadcast.test_send",
            target_type="broadcast",
            target_id=broadcast.id,
            version=broadcast.version,
            results=[r.model_dump() for r in results],
        )
    return TestSendOut(results=results)
