"""How each process reaches the Redis of arq's queue: server, worker, CLI, bench, tests."""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings

# arq's default is 1 s, and the timeout runs on event-loop time: a process whose loop is busy
# for a second while its pool opens a new connection (a loaded two-core machine does that now and
# then) failed a worker's heartbeat with TimeoutError although Redis was fine. Five seconds still
# reports a Redis that is really gone quickly.
CONNECT_TIMEOUT_S = 5


def queue_redis_settings(url: str) -> RedisSettings:
    """arq's connection settings for the Redis at `url`."""
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = CONNECT_TIMEOUT_S
    return settings


def redis_text(value: Any) -> str:
    """A value read from that Redis as text: arq's pool answers bytes, not str."""
    return value.decode() if isinstance(value, bytes) else str(value)
