"""Console sessions: a random id in an HttpOnly cookie, the state in Redis with an expiry.

Only a SHA-256 of the session id is used as the Redis key, so a leaked Redis dump cannot be
replayed as cookies. Each session carries its own CSRF token (synchronizer token pattern).
The idle expiry slides on every request; the absolute lifetime does not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import asdict, dataclass

from aiohttp import web

from notify.db import utcnow
from notify.web.keys import REDIS, SETTINGS

SESSION_COOKIE = "hub_session"
IDLE_TIMEOUT = dt.timedelta(minutes=60)
ABSOLUTE_LIFETIME = dt.timedelta(hours=12)
_PREFIX = "console:session:"


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    staff_id: int
    csrf_token: str
    created_at: str  # ISO 8601 UTC

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.created_at)


def _key(session_id: str) -> str:
    return _PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


async def create_session(request: web.Request, staff_id: int) -> tuple[str, ConsoleSession]:
    session_id = secrets.token_urlsafe(32)
    state = ConsoleSession(staff_id, secrets.token_urlsafe(32), utcnow().isoformat())
    await request.app[REDIS].set(
        _key(session_id), json.dumps(asdict(state)), ex=int(IDLE_TIMEOUT.total_seconds())
    )
    return session_id, state


async def load_session(request: web.Request) -> ConsoleSession | None:
    """The caller's session (sliding its idle expiry), or None when absent or expired."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 128:
        return None
    redis = request.app[REDIS]
    raw = await redis.get(_key(session_id))
    if raw is None:
        return None
    try:
        state = ConsoleSession(**json.loads(raw))
    except (TypeError, ValueError):
        return None
    if utcnow() - state.created > ABSOLUTE_LIFETIME:
        await redis.delete(_key(session_id))
        return None
    await redis.expire(_key(session_id), int(IDLE_TIMEOUT.total_seconds()))
    return state


async def destroy_session(request: web.Request) -> None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id and len(session_id) <= 128:
        await request.app[REDIS].delete(_key(session_id))


def set_session_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=not request.app[SETTINGS].demo,
        max_age=int(ABSOLUTE_LIFETIME.total_seconds()),
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=not request.app[SETTINGS].demo,
    )
