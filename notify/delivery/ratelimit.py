"""One rate limiter in Redis shared by every worker process (GCRA with reservations).

Each bucket (a provider endpoint: LINE multicast, FCM send, SMTP) keeps one number in Redis,
its theoretical arrival time (TAT). A caller reserves `cost` units and is told how long to
wait before using them; reservations are handed out in order across all workers, so the
combined rate never exceeds the limit and nobody spins. The clock is Redis's own (`TIME`),
so workers on several machines agree.

The burst allowance is one reservation: providers count in sliding windows (LINE: 200
requests in any second), and a bucket that allowed "rate + burst" in a window would earn
429s. We run a little under the published limit (`SAFETY`) for the same reason.

A 429 pushes the bucket's TAT forward (`penalize`), so every worker backs off together.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis

from channels.base import ChannelName
from notify.settings import Settings

SAFETY = 0.97
KEY_PREFIX = "delivery:rate:"

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + cost * interval
local wait = new_tat - burst - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {0, math.floor(wait)} end
local ttl = math.floor((new_tat - now) / 1000) + 60000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
return {1, math.floor(wait)}
"""

_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < until_ then
  local ttl = math.floor(tonumber(ARGV[1]) / 1000) + 60000
  redis.call('SET', KEYS[1], string.format('%.0f', until_), 'PX', ttl)
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    per_s: float  # units per second (requests for LINE multicast, messages for FCM/SMTP)

    @property
    def interval_us(self) -> float:
        return 1_000_000.0 / (self.per_s * SAFETY)


class TooLong(Exception):
    """The reservation would wait longer than the caller allows: re-queue instead of sleeping."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"rate limit: {wait_s:.1f} s to wait")
        self.wait_s = wait_s


def buckets_for(settings: Settings) -> dict[str, Bucket]:
    """Per channel: the bucket of the provider endpoint the engine sends through."""
    return {
        ChannelName.LINE: Bucket("line:multicast", settings.line_multicast_per_s),
        ChannelName.FCM: Bucket("fcm:send", settings.fcm_per_min / 60.0),
        ChannelName.EMAIL: Bucket("smtp:send", settings.smtp_per_s),
    }


class RateLimiter:
    def __init__(self, redis: Redis, *, enabled: bool = True) -> None:
        self.redis = redis
        self.enabled = enabled
        self._reserve = redis.register_script(_RESERVE)
        self._penalize = redis.register_script(_PENALIZE)

    async def reserve(self, bucket: Bucket, cost: int, *, max_wait_s: float = 10.0) -> float:
        """Reserve `cost` units; returns the seconds to wait before using them.

        Raises TooLong (nothing reserved) when the wait would exceed `max_wait_s`.
        """
        if not self.enabled or cost <= 0:
            return 0.0
        burst_us = bucket.interval_us * cost  # one reservation may go out at once
        ok, wait_us = await self._reserve(
            keys=[KEY_PREFIX + bucket.name],
            args=[bucket.interval_us, burst_us, cost, max_wait_s * 1_000_000],
        )
        if not ok:
            raise TooLong(int(wait_us) / 1_000_000)
        return int(wait_us) / 1_000_000

    async def acquire(self, bucket: Bucket, cost: int, *, max_wait_s: float = 10.0) -> None:
        wait_s = await self.reserve(bucket, cost, max_wait_s=max_wait_s)
        if wait_s > 0:
            await asyncio.sleep(wait_s)

    async def penalize(self, bucket: Bucket, seconds: float) -> None:
        """The provider said 429: nobody sends on this bucket for `seconds`."""
        if self.enabled and seconds > 0:
            await self._penalize(keys=[KEY_PREFIX + bucket.name], args=[int(seconds * 1e6)])
