"""Residents' data requests, handled by staff (admin): find, export, erase.

- `POST /api/residents/lookup` finds a resident from what they can tell staff (their email
  address, or the LINE user id / app device shown in the app).
- `GET /api/residents/{resident_id}/export` everything the hub holds about one resident, as JSON.
- `DELETE /api/residents/{resident_id}` erases the resident, children, topics and endpoints.

Each is audit-logged in the same transaction. The audit entry of an erase keeps no personal
data: the random public id (which then points at nothing), counts, and the staff member.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from notify import audit
from notify.errors import NotFound
from notify.models import Child, Endpoint, Resident, ResidentTopic, Role
from notify.registry.email_address import check_email
from notify.registry.profile import profile_out
from notify.registry.routing import routes
from notify.registry.store import erase_rows, find_endpoint
from notify.web.api import Call
from notify.web.keys import DB

RequestRef = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,40}$")  # ticket no., never PII


class LookupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["line", "fcm", "email"]
    address: str = Field(min_length=1, max_length=512)
    request_ref: str | None = RequestRef


class LookupOut(BaseModel):
    resident_id: str


class RequestQuery(BaseModel):
    request_ref: str | None = RequestRef


class EndpointExport(BaseModel):
    channel: str
    address: str
    platform: str | None
    consent: str
    status: str
    consent_at: dt.datetime | None
    withdrawn_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ResidentExport(BaseModel):
    resident_id: str
    status: str
    ward_code: str | None
    language: str
    children: list[dict[str, int]]
    topics: list[str]
    quiet_hours: dict[str, str] | None
    preferred_channel: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    endpoints: list[EndpointExport]
    exported_at: dt.datetime


def _is_public_id(raw: str) -> bool:
    try:
        return str(uuid.UUID(raw)) == raw
    except ValueError:
        return False


async def _resident(session: AsyncSession, public_id: str) -> Resident:
    resident = None
    # Public ids are canonical UUIDs; anything else (a NUL byte, which PostgreSQL refuses
    # with an error, among them) names no one.
    if _is_public_id(public_id):
        query = select(Resident).where(Resident.public_id == public_id)
        resident = (await session.execute(query)).scalar_one_or_none()
    if resident is None:
        raise NotFound("登録が見つかりません / resident not found")
    return resident


@routes.post(
    "/api/residents/lookup",
    summary="Find a resident by one of their addresses (for a data request)",
    roles=[Role.ADMIN],
    body=LookupIn,
    response=LookupOut,
    errors=[404, 422],
)
async def lookup(request: web.Request, call: Call[LookupIn, None]) -> LookupOut:
    address = call.body.address.strip()
    if call.body.channel == "email":
        address = check_email(address, field="address").address
    async with request.app[DB].transaction() as session:
        endpoint = await find_endpoint(session, call.body.channel, address)
        resident = None if endpoint is None else await session.get(Resident, endpoint.resident_id)
        audit.record(
            session,
            call.principal or ("system", None),
            "resident.lookup",
            target_type="resident",
            target_id=resident.public_id if resident else None,
            channel=call.body.channel,
            found=resident is not None,
            request_ref=call.body.request_ref,
        )
    if resident is None:
        raise NotFound("登録が見つかりません / no resident with this address")
    return LookupOut(resident_id=resident.public_id)


async def export_resident(session: AsyncSession, resident: Resident) -> ResidentExport:
    profile = await profile_out(session, resident)
    endpoints = (
        await session.scalars(
            select(Endpoint).where(Endpoint.resident_id == resident.id).order_by(Endpoint.id)
        )
    ).all()
    return ResidentExport(
        resident_id=resident.public_id,
        status=resident.status,
        ward_code=resident.ward_code,
        language=resident.language,
        children=[c.model_dump() for c in profile.children],
        topics=profile.topics,
        quiet_hours=profile.quiet_hours.model_dump() if profile.quiet_hours else None,
        preferred_channel=resident.preferred_channel,
        created_at=resident.created_at,
        updated_at=resident.updated_at,
        endpoints=[EndpointExport.model_validate(e, from_attributes=True) for e in endpoints],
        exported_at=dt.datetime.now(dt.UTC),
    )


@routes.get(
    "/api/residents/{resident_id}/export",
    summary="Export everything held about one resident (JSON)",
    roles=[Role.ADMIN],
    query=RequestQuery,
    response=ResidentExport,
    errors=[404],
)
async def export(request: web.Request, call: Call[None, RequestQuery]) -> ResidentExport:
    async with request.app[DB].transaction() as session:
        resident = await _resident(session, call.path["resident_id"])
        data = await export_resident(session, resident)
        audit.record(
            session,
            call.principal or ("system", None),
            "resident.export",
            target_type="resident",
            target_id=resident.public_id,
            request_ref=call.query.request_ref,
        )
    return data


async def erase_resident(
    session: AsyncSession, resident: Resident, actor: Any, request_ref: str | None = None
) -> dict[str, Any]:
    """Delete the resident and everything hanging off it; audit without personal data."""
    counts: dict[str, Any] = {
        "children": await _count(session, Child, resident.id),
        "topics": await _count(session, ResidentTopic, resident.id),
        "endpoints": dict(
            (
                await session.execute(
                    select(Endpoint.channel, func.count())
                    .where(Endpoint.resident_id == resident.id)
                    .group_by(Endpoint.channel)
                )
            ).all()
        ),
    }
    public_id = resident.public_id
    await erase_rows(session, resident.id)
    audit.record(
        session,
        actor,
        "resident.erase",
        target_type="resident",
        target_id=public_id,
        request_ref=request_ref,
        **counts,
    )
    return counts


async def _count(session: AsyncSession, table: Any, resident_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(table).where(table.resident_id == resident_id)
        )
        or 0
    )


@routes.delete(
    "/api/residents/{resident_id}",
    summary="Erase one resident (children, topics, endpoints); keeps an audit entry only",
    roles=[Role.ADMIN],
    query=RequestQuery,
    status=204,
    errors=[404],
)
async def erase(request: web.Request, call: Call[None, RequestQuery]) -> None:
    async with request.app[DB].transaction() as session:
        resident = await _resident(session, call.path["resident_id"])
        await erase_resident(
            session, resident, call.principal or ("system", None), call.query.request_ref
        )
