"""One runner per switch at a time: a Redis lease, renewed while a run waits on LINE.

A re-queued job and a resumed one may overlap; the second sees the lease and steps back.
A run that dies keeps the lease at most `LEASE_MS`, then a re-queued job takes over.
"""

from __future__ import annotations

import secrets

from notify.mode.runtime import ModeRuntime

LEASE_MS = 60_000


def lease_key(switch_id: int) -> str:
    return f"mode:switch:{switch_id}:lease"


async def take(rt: ModeRuntime, switch_id: int) -> str | None:
    if rt.redis is None:  # the CLI without Redis: this process is the only runner
        return "local"
    token = secrets.token_hex(8)
    ok = await rt.redis.set(lease_key(switch_id), token, nx=True, px=LEASE_MS)
    return token if ok else None


async def renew(rt: ModeRuntime, switch_id: int) -> None:
    if rt.redis is not None:
        await rt.redis.pexpire(lease_key(switch_id), LEASE_MS)


async def release(rt: ModeRuntime, switch_id: int, token: str) -> None:
    if rt.redis is not None:
        key = lease_key(switch_id)
        if (await rt.redis.get(key)) == token.encode():
            await rt.redis.delete(key)
