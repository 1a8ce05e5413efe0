"""Staff accounts API (admin only): users with roles, API tokens issued and revoked.

A token's value is shown once, when issued; only its SHA-256 is kept. Every change is
audit-logged. The last active admin cannot be demoted or deactivated (nobody could undo it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notify import audit
from notify.db import utcnow
from notify.errors import Conflict, NotFound
from notify.models import Role, StaffToken, StaffUser
from notify.staff import check_roles, create_staff, hash_password, issue_token
from notify.web.api import ApiRoutes, Call, path_id
from notify.web.keys import DB

routes = ApiRoutes("staff")
ADMIN = [Role.ADMIN]
LOGIN = r"^[a-z0-9][a-z0-9._-]{1,63}$"


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    login: str = Field(pattern=LOGIN)
    display_name: str = Field(min_length=1, max_length=100)
    roles: list[str] = Field(min_length=1, max_length=5)
    password: str | None = Field(default=None, min_length=10, max_length=200)


class StaffPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    roles: list[str] | None = Field(default=None, min_length=1, max_length=5)
    active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=200)


class StaffOut(BaseModel):
    id: int
    login: str
    display_name: str
    roles: list[str]
    active: bool
    has_password: bool
    created_at: dt.datetime


class StaffTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="api", min_length=1, max_length=64)


class TokenOut(BaseModel):
    id: int
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class IssuedToken(TokenOut):
    token: str = Field(description="shown once; store it now")


def _out(user: StaffUser) -> StaffOut:
    return StaffOut(
        id=user.id,
        login=user.login,
        display_name=user.display_name,
        roles=list(user.roles),
        active=user.active,
        has_password=user.password_hash is not None,
        created_at=user.created_at,
    )


_NO_STAFF = "職員が見つかりません / no such staff user"
_NO_TOKEN = "トークンがありません / no such token"


async def _user(session: AsyncSession, call: Call[Any, Any]) -> StaffUser:
    user = await session.get(StaffUser, path_id(call.path["staff_id"], _NO_STAFF))
    if user is None:
        raise NotFound(_NO_STAFF, fields={"staff_id": "unknown"})
    return user


@routes.get("/api/staff", summary="Staff users / 職員一覧", roles=ADMIN, response=list[StaffOut])
async def list_staff(request: web.Request, call: Call[None, None]) -> list[StaffOut]:
    async with request.app[DB].sessionmaker() as session:
        return [_out(u) for u in await session.scalars(select(StaffUser).order_by(StaffUser.id))]


@routes.post(
    "/api/staff",
    summary="Create a staff user / 職員を登録",
    roles=ADMIN,
    body=StaffIn,
    response=StaffOut,
    status=201,
    errors=[409, 415],
)
async def add_staff(request: web.Request, call: Call[StaffIn, None]) -> StaffOut:
    assert call.principal is not None
    body = call.body
    async with request.app[DB].transaction() as session:
        user = await create_staff(session, body.login, body.display_name, body.roles, body.password)
        audit.record(
            session, call.principal, "staff.create", target_type="staff", target_id=user.id,
            login=user.login, roles=user.roles,
        )  # fmt: skip
    return _out(user)


@routes.patch(
    "/api/staff/{staff_id:\\d+}",
    summary="Change roles, name, password or deactivate / 職員情報の変更",
    roles=ADMIN,
    body=StaffPatch,
    response=StaffOut,
    errors=[404, 409, 415],
)
async def edit_staff(request: web.Request, call: Call[StaffPatch, None]) -> StaffOut:
    assert call.principal is not None
    body = call.body
    async with request.app[DB].transaction() as session:
        user = await _user(session, call)
        if body.roles is not None:
            user.roles = check_roles(body.roles)
        if body.active is not None:
            user.active = body.active
        if body.display_name is not None:
            user.display_name = body.display_name
        if body.password is not None:
            user.password_hash = hash_password(body.password)
        await session.flush()
        await _keep_an_admin(session)
        changed = sorted(body.model_fields_set - {"password"})
        audit.record(
            session, call.principal, "staff.update", target_type="staff", target_id=user.id,
            fields=changed + (["password"] if body.password is not None else []),
            roles=user.roles, active=user.active,
        )  # fmt: skip
    return _out(user)


async def _keep_an_admin(session: AsyncSession) -> None:
    users = await session.scalars(select(StaffUser).where(StaffUser.active.is_(True)))
    if not any(Role.ADMIN in u.roles for u in users):
        raise Conflict(
            "管理者が一人もいなくなります / this would leave no active admin",
            fields={"roles": "keep at least one active admin"},
        )


@routes.get(
    "/api/staff/{staff_id:\\d+}/tokens",
    summary="A staff user's API tokens (values are never shown again) / APIトークン一覧",
    roles=ADMIN,
    response=list[TokenOut],
    errors=[404],
)
async def list_tokens(request: web.Request, call: Call[None, None]) -> list[TokenOut]:
    async with request.app[DB].sessionmaker() as session:
        user = await _user(session, call)
        rows = await session.scalars(
            select(StaffToken).where(StaffToken.staff_id == user.id).order_by(StaffToken.id)
        )
        return [TokenOut.model_validate(t, from_attributes=True) for t in rows]


@routes.post(
    "/api/staff/{staff_id:\\d+}/tokens",
    summary="Issue an API token / APIトークンを発行",
    roles=ADMIN,
    body=StaffTokenIn,
    response=IssuedToken,
    status=201,
    errors=[404, 415],
)
async def add_token(request: web.Request, call: Call[StaffTokenIn, None]) -> IssuedToken:
    assert call.principal is not None
    async with request.app[DB].transaction() as session:
        user = await _user(session, call)
        value = await issue_token(session, user, call.body.name)
        row = (
            await session.scalars(
                select(StaffToken)
                .where(StaffToken.staff_id == user.id)
                .order_by(StaffToken.id.desc())
            )
        ).first()
        assert row is not None
        audit.record(
            session, call.principal, "staff.token_issue", target_type="staff", target_id=user.id,
            token_id=row.id, name=row.name,
        )  # fmt: skip
    return IssuedToken(
        id=row.id, name=row.name, created_at=row.created_at, revoked_at=None, token=value
    )


@routes.delete(
    "/api/staff/{staff_id:\\d+}/tokens/{token_id:\\d+}",
    summary="Revoke an API token / APIトークンを失効",
    roles=ADMIN,
    errors=[404],
)
async def revoke_token(request: web.Request, call: Call[None, None]) -> None:
    assert call.principal is not None
    async with request.app[DB].transaction() as session:
        user = await _user(session, call)
        token = await session.get(StaffToken, path_id(call.path["token_id"], _NO_TOKEN))
        if token is None or token.staff_id != user.id:
            raise NotFound(_NO_TOKEN, fields={"token_id": "unknown"})
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            audit.record(
                session, call.principal, "staff.token_revoke", target_type="staff",
                target_id=user.id, token_id=token.id,
            )  # fmt: skip
