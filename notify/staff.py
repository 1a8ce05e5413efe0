"""Staff accounts, roles and API tokens (argon2id password hashes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.errors import Conflict, InvalidInput
from notify.models import Role, StaffToken, StaffUser
from notify.web.auth import hash_token, new_staff_token

_hasher = PasswordHasher()  # argon2id, memory-hard; parameters from argon2-cffi's RFC 9106 profile

MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise InvalidInput(
            "パスワードは10文字以上にしてください / password too short",
            fields={"password": "at least 10 characters"},
        )
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_roles(roles: Iterable[str]) -> list[str]:
    valid = {r.value for r in Role}
    roles = list(dict.fromkeys(roles))
    unknown = [r for r in roles if r not in valid]
    if unknown or not roles:
        raise InvalidInput(
            "不明な役割です / unknown role",
            fields={"roles": f"choose from {', '.join(sorted(valid))}"},
        )
    return roles


async def create_staff(
    session: AsyncSession,
    login: str,
    display_name: str,
    roles: Iterable[str],
    password: str | None = None,
) -> StaffUser:
    exists = await session.scalar(select(StaffUser.id).where(StaffUser.login == login))
    if exists is not None:
        raise Conflict(
            "そのログイン名は使われています / login already taken", fields={"login": "taken"}
        )
    user = StaffUser(
        login=login,
        display_name=display_name,
        roles=check_roles(roles),
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    await session.flush()
    return user


async def issue_token(session: AsyncSession, staff: StaffUser, name: str = "api") -> str:
    """Create an API token; the plain value is returned once and never stored."""
    token = new_staff_token()
    session.add(StaffToken(staff_id=staff.id, token_hash=hash_token(token), name=name))
    await session.flush()
    return token
