"""What the delivery jobs share inside one worker process (built once in `jobs.startup`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis

from channels.base import Channel, ChannelName
from notify.city import CityConfig
from notify.db import Database
from notify.delivery.ratelimit import Bucket, RateLimiter, buckets_for
from notify.delivery.render_cache import RenderCache
from notify.models import Broadcast
from notify.settings import Settings

# How many batches of a channel one worker process may have in flight. FCM and SMTP have no
# idempotency key, so a kill -9 repeats whatever was in flight and not yet recorded: one
# batch per channel and process bounds that repeat to one batch per kill. LINE batches are
# idempotent (retry key) and may run side by side: eight per process. Sixteen made more
# claims and record transactions contend in PostgreSQL than they kept the LINE API busy
# (`python -m bench fanout --recipients 1000000 --real-limits`: 34.8-35.9 s with sixteen,
# 30.6-32.6 s with eight, 31.7-33.6 s with four; LINE alone 15.1 s against 13.4-13.9 s).
IN_FLIGHT_PER_PROCESS: Mapping[str, int] = {
    ChannelName.LINE: 8,
    ChannelName.FCM: 1,
    ChannelName.EMAIL: 1,
}
# Sent by lanes (notify.delivery.lanes): one batch at a time, taken from the database.
LANE_CHANNELS = tuple(name for name, n in IN_FLIGHT_PER_PROCESS.items() if n == 1)
# Sent by a pool in each process (notify.delivery.sender): several batches at once, taken
# from the database.
POOL_CHANNELS = tuple(name for name, n in IN_FLIGHT_PER_PROCESS.items() if n > 1)
# Every channel whose batches a lane or pool takes from the database.
DRAWN_CHANNELS = LANE_CHANNELS + POOL_CHANNELS
SENDING_REMEMBERED = 64  # broadcasts (`DeliveryRuntime.sending`); a few send at once


@dataclass(slots=True)
class DeliveryRuntime:
    settings: Settings
    city: CityConfig
    db: Database
    redis: ArqRedis
    channels: Mapping[str, Channel]
    limiter: RateLimiter
    buckets: Mapping[str, Bucket]
    renders: RenderCache
    # The FCM or email lanes running in this process (notify.delivery.lanes): one, or both
    # when a channel found no other process to run it (sender.BESIDE_AFTER_TRIES).
    lanes_here: set[str] = field(default_factory=set)
    pools: set[str] = field(default_factory=set)  # the channels whose pool runs here (LINE)
    lane_calls: dict[str, int] = field(default_factory=dict)  # jobs that found it running
    turn: tuple[str, str] | None = None  # (lane here, channel it should turn to): sender._lane
    # Broadcasts whose batches this process sends, as read at their first claim here: what
    # a send reads of one (content, channels, policy, priority) is frozen from approval on
    # (only a draft is edited), and each claim checks the live status in the database.
    sending: dict[int, Broadcast] = field(default_factory=dict)
    # Attempts per broadcast sending here and not yet recorded (sender._attempt).
    in_flight: Counter[int] = field(default_factory=Counter)

    def remember_sending(self, broadcast: Broadcast) -> None:
        if len(self.sending) >= SENDING_REMEMBERED:
            del self.sending[next(iter(self.sending))]  # the oldest
        self.sending[broadcast.id] = broadcast

    def batch_size(self, channel: str) -> int:
        configured = {
            ChannelName.LINE: min(self.settings.chunk_size_line, 500),
            ChannelName.FCM: self.settings.chunk_size_fcm,
            ChannelName.EMAIL: self.settings.chunk_size_email,
        }[ChannelName(channel)]
        adapter = self.channels.get(channel)
        return min(configured, adapter.max_batch) if adapter is not None else configured

    def sizes(self) -> dict[str, int]:
        return {name.value: self.batch_size(name) for name in ChannelName}


def build_runtime(ctx: dict[str, Any], channels: Mapping[str, Channel]) -> DeliveryRuntime:
    settings: Settings = ctx["settings"]
    redis: ArqRedis = ctx["redis"]
    return DeliveryRuntime(
        settings=settings,
        city=ctx["city"],
        db=ctx["db"],
        redis=redis,
        channels=channels,
        limiter=RateLimiter(redis, enabled=settings.rate_limits_enabled),
        buckets=buckets_for(settings),
        renders=RenderCache(ctx["city"]),
    )


def runtime(ctx: Mapping[str, Any]) -> DeliveryRuntime:
    found = ctx.get("delivery")
    if not isinstance(found, DeliveryRuntime):
        raise RuntimeError("delivery runtime missing: notify.delivery.jobs.startup did not run")
    return found
