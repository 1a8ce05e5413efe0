"""Who is calling: staff (API token or console session), an app device, or nobody.

Staff API tokens look like `stf_<random>`; app devices get `dev_<endpoint id>_<secret>` at
registration. Only SHA-256 hashes are stored (the values are long random strings, so a slow
hash buys nothing). The console adds its session cookie through `SESSION_LOADER`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy import select

from notify.errors import Forbidden, Unauthenticated
from notify.models import Endpoint, EndpointStatus, Role, StaffToken, StaffUser
from notify.web.keys import DB


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "staff" | "device"
    staff_id: int | None = None
    login: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    endpoint_id: int | None = None
    resident_id: int | None = None
    via_session: bool = False

    def has_any_role(self, roles: Iterable[str]) -> bool:
        wanted = set(roles)
        return Role.ADMIN in self.roles or not wanted or bool(wanted & self.roles)

    @classmethod
    def of_staff(cls, staff: StaffUser, *, via_session: bool = False) -> Principal:
        return cls(
            "staff",
            staff_id=staff.id,
            login=staff.login,
            roles=frozenset(staff.roles),
            via_session=via_session,
        )

    @property
    def audit_actor(self) -> tuple[str, str]:
        if self.kind == "staff":
            return "staff", str(self.staff_id)
        return "resident", str(self.resident_id)


SessionLoader = Callable[[web.Request], Awaitable[Principal | None]]
SESSION_LOADER: web.AppKey[SessionLoader] = web.AppKey("session_loader")
_PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_staff_token() -> str:
    return "stf_" + secrets.token_urlsafe(32)


def new_device_secret() -> str:
    return secrets.token_urlsafe(32)


def device_credential(endpoint_id: int, secret: str) -> str:
    return f"dev_{endpoint_id}_{secret}"


async def current_principal(request: web.Request) -> Principal | None:
    if _PRINCIPAL in request:
        return request[_PRINCIPAL]
    principal = await _resolve(request)
    request[_PRINCIPAL] = principal
    return principal


async def _resolve(request: web.Request) -> Principal | None:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential:
        credential = credential.strip()
        if credential.startswith("stf_"):
            return await _staff_from_token(request, credential)
        if credential.startswith("dev_"):
            return await _device_from_credential(request, credential)
        return None
    loader = request.app.get(SESSION_LOADER)
    return await loader(request) if loader else None


async def _staff_from_token(request: web.Request, token: str) -> Principal | None:
    async with request.app[DB].sessionmaker() as session:
        row = (
            await session.execute(
                select(StaffUser)
                .join(StaffToken, StaffToken.staff_id == StaffUser.id)
                .where(StaffToken.token_hash == hash_token(token), StaffToken.revoked_at.is_(None))
            )
        ).scalar_one_or_none()
    if row is None or not row.active:
        return None
    return Principal.of_staff(row)


async def _device_from_credential(request: web.Request, credential: str) -> Principal | None:
    _, _, rest = credential.partition("_")
    endpoint_part, _, secret = rest.partition("_")
    if not endpoint_part.isdigit() or not secret:
        return None
    async with request.app[DB].sessionmaker() as session:
        endpoint = await session.get(Endpoint, int(endpoint_part))
    if endpoint is None or endpoint.secret_hash is None:
        return None
    if endpoint.status == EndpointStatus.PRUNED and endpoint.channel != "fcm":
        return None
    if not hmac.compare_digest(endpoint.secret_hash, hash_token(secret)):
        return None
    return Principal("device", endpoint_id=endpoint.id, resident_id=endpoint.resident_id)


async def require_staff(request: web.Request, roles: Iterable[str] = ()) -> Principal:
    principal = await current_principal(request)
    if principal is None or principal.kind != "staff":
        raise Unauthenticated("ログインが必要です / authentication required")
    roles = tuple(roles)
    if not principal.has_any_role(roles):
        raise Forbidden(
            f"この操作の権限がありません / requires one of the roles: {', '.join(roles)}"
        )
    return principal


async def require_device(request: web.Request) -> Principal:
    principal = await current_principal(request)
    if principal is None or principal.kind != "device":
        raise Unauthenticated("端末の認証に失敗しました / device authentication required")
    return principal
