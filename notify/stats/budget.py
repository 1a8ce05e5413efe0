"""A request budget shared by every process, in Redis: at most N requests in any hour.

LINE allows 60 statistics requests an hour (a 429 carries no Retry-After), so every worker
takes a slot here before calling. A sliding window (a sorted set of request times, trimmed
and counted by one Lua script) never lets 2N through around the turn of an hour, which a
fixed per-hour counter would.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

LINE_STATISTICS_KEY = "hub:budget:line:statistics"
# LINE's limit is 60/hour; we keep a margin for manual reads from LINE's own console tools.
LINE_STATISTICS_PER_HOUR = 50
WINDOW_S = 3600.0

_TAKE = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then return 0 end
redis.call('ZADD', key, now, member)
redis.call('EXPIRE', key, math.ceil(window) + 60)
return 1
"""


async def take_slot(
    redis: Any,
    key: str = LINE_STATISTICS_KEY,
    *,
    limit: int = LINE_STATISTICS_PER_HOUR,
    window_s: float = WINDOW_S,
    now: float | None = None,
) -> bool:
    """Reserve one request in the window; False when the budget is spent."""
    moment = time.time() if now is None else now
    taken = await redis.eval(_TAKE, 1, key, moment, window_s, limit, uuid.uuid4().hex)
    return bool(int(taken))


async def remaining(
    redis: Any,
    key: str = LINE_STATISTICS_KEY,
    *,
    limit: int = LINE_STATISTICS_PER_HOUR,
    window_s: float = WINDOW_S,
    now: float | None = None,
) -> int:
    moment = time.time() if now is None else now
    used = await redis.zcount(key, moment - window_s, "+inf")
    return max(0, limit - int(used))
