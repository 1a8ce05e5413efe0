"""Password sign-in with lockout, and the session → Principal bridge for pages and the API."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import select

from notify import audit
from notify.console.csrf import check_header
from notify.console.sessions import ConsoleSession, load_session
from notify.db import Database, utcnow
from notify.models import StaffUser
from notify.staff import LOCKOUT, MAX_FAILED_LOGINS, hash_password, verify_password
from notify.web.auth import Principal
from notify.web.keys import DB


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the login is unknown, so a wrong login costs as long as a wrong
    # password and timing does not tell which logins exist.
    return hash_password("not-a-real-password-0123456789")


@dataclass(frozen=True, slots=True)
class SignIn:
    staff: StaffUser | None
    locked: bool = False


async def authenticate(db: Database, login: str, password: str) -> SignIn:
    """Check a password (argon2id, off the event loop) and keep the lockout counters."""
    async with db.transaction() as session:
        staff = (
            await session.execute(
                select(StaffUser).where(StaffUser.login == login).with_for_update()
            )
        ).scalar_one_or_none()
        now = utcnow()
        if staff is None or not staff.active:
            await asyncio.to_thread(verify_password, _dummy_hash(), password)
            return SignIn(None)
        if staff.locked_until is not None and staff.locked_until > now:
            audit.record(session, ("staff", str(staff.id)), "console.login_locked")
            return SignIn(None, locked=True)
        if await asyncio.to_thread(verify_password, staff.password_hash, password):
            staff.failed_logins = 0
            staff.locked_until = None
            audit.record(session, ("staff", str(staff.id)), "console.login")
            return SignIn(staff)
        staff.failed_logins += 1
        if staff.failed_logins >= MAX_FAILED_LOGINS:
            staff.failed_logins = 0
            staff.locked_until = now + LOCKOUT
            audit.record(session, ("staff", str(staff.id)), "console.locked_out")
        else:
            audit.record(session, ("staff", str(staff.id)), "console.login_failed")
        return SignIn(None)


async def active_staff(request: web.Request, staff_id: int) -> StaffUser | None:
    async with request.app[DB].sessionmaker() as session:
        staff = await session.get(StaffUser, staff_id)
    return staff if staff is not None and staff.active else None


def principal_for(staff: StaffUser) -> Principal:
    return Principal.of_staff(staff, via_session=True)


async def session_principal(request: web.Request) -> Principal | None:
    """`notify.web.auth.SESSION_LOADER`: the JSON API accepts the console's session cookie.

    A cookie is sent by the browser on its own, so every unsafe request it authenticates must
    also carry the session's CSRF token in `X-CSRF-Token` (the console's script sends it).
    """
    state: ConsoleSession | None = await load_session(request)
    if state is None:
        return None
    staff = await active_staff(request, state.staff_id)
    if staff is None:
        return None
    check_header(request, state.csrf_token)
    return principal_for(staff)
