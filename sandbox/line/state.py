"""What the LINE simulator remembers: users, retry keys, deliveries, opens, aggregation units.

Memory stays small at 10^6 users: per-user data is a dict of ints (`Counters`) and sets of
ids; no request body is kept outside the bounded request log.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from sandbox.common import Counters

from .richmenus import RichMenuStore

JST = timezone(timedelta(hours=9))
RETRY_KEY_TTL_S = 24 * 3600


class Clock:
    """Wall and monotonic time plus an offset that `POST /_sandbox/clock` can advance."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def wall(self) -> float:
        return time.time() + self.offset_s

    def mono(self) -> float:
        return time.monotonic() + self.offset_s

    def jst_date(self, at: float | None = None) -> int:
        moment = datetime.fromtimestamp(self.wall() if at is None else at, JST)
        return int(moment.strftime("%Y%m%d"))

    def jst_month(self) -> str:
        return datetime.fromtimestamp(self.wall(), JST).strftime("%Y%m")

    def iso(self, at: float) -> str:
        moment = datetime.fromtimestamp(at, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class LineConfig:
    """Behaviour knobs, settable with `POST /_sandbox/config`."""

    open_probability: float = 0.5
    seed: int | None = 0
    quota: int | None = None  # monthly target limit (messages); None = no limit
    aggregation_unit_cap: int = 1000  # distinct custom aggregation unit names per month
    privacy_threshold: int = 20  # insight values under this come back null
    insight_delay_days: int = 1  # follower statistics are calculated once a day
    fail_next_batch_after_ops: int | None = None  # the next richmenu/batch fails after N ops
    batch_duration_s: float = 0.0  # richmenu/batch stays "ongoing" this long

    def update(self, data: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config: {sorted(unknown)}; known: {sorted(known)}")
        for name, value in data.items():
            setattr(self, name, value)
        if not 0.0 <= float(self.open_probability) <= 1.0:
            raise ValueError("open_probability must be between 0 and 1")


@dataclass(slots=True)
class UnitStats:
    """Delivery and open counts of one custom aggregation unit, per JST day."""

    delivered_by_day: dict[int, int] = field(default_factory=dict)
    impressions_by_day: dict[int, list[int]] = field(default_factory=dict)  # per bubble
    first_open_day: dict[str, int] = field(default_factory=dict)  # unique openers


@dataclass(slots=True)
class SendRecord:
    """One accepted broadcast/narrowcast (statistics by request id) or push/multicast."""

    request_id: str
    kind: str
    accepted_at: float
    target: int = 0
    delivered: int = 0
    openers: int = 0
    impressions: list[int] = field(default_factory=list)


@dataclass(slots=True)
class AcceptedKey:
    request_id: str
    accepted_at: float
    sent_messages: list[dict[str, str]] | None


class LineState:
    def __init__(self, config: LineConfig, counters: Counters, clock: Clock) -> None:
        self.config = config
        self.counters = counters
        self.clock = clock
        self.tasks: set[asyncio.Task[None]] = set()
        self.clear()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work (rich menu batches) that `stop()` / reset can cancel."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def clear(self) -> None:
        self.cancel_tasks()
        self.rng = random.Random(self.config.seed)
        self.blocked: set[str] = set()
        self.followers: set[str] = set()
        self.follows_by_day: dict[int, int] = {}
        self.blocks_by_day: dict[int, int] = {}
        self.display_names: dict[str, str] = {}
        self.retry_keys: dict[str, AcceptedKey] = {}
        self.units: dict[str, UnitStats] = {}
        self.unit_names_by_month: dict[str, dict[str, None]] = {}  # ordered set per month
        self.records: dict[str, SendRecord] = {}  # broadcast / narrowcast, by request id
        self.consumption_by_month: dict[str, int] = {}
        self.richmenus = RichMenuStore()

    # --- users -----------------------------------------------------------------------

    def add_followers(self, user_ids: Iterable[str]) -> int:
        before = len(self.followers)
        self.followers.update(user_ids)
        added = len(self.followers) - before
        day = self.clock.jst_date()
        self.follows_by_day[day] = self.follows_by_day.get(day, 0) + added
        return added

    def set_blocked(self, user_ids: Iterable[str], blocked: bool) -> None:
        day = self.clock.jst_date()
        for user_id in user_ids:
            if blocked and user_id not in self.blocked:
                self.blocked.add(user_id)
                self.blocks_by_day[day] = self.blocks_by_day.get(day, 0) + 1
            elif not blocked and user_id in self.blocked:
                self.blocked.discard(user_id)
                self.blocks_by_day[day] = self.blocks_by_day.get(day, 0) - 1

    # --- retry keys ------------------------------------------------------------------

    def accepted_key(self, key: str) -> AcceptedKey | None:
        accepted = self.retry_keys.get(key)
        if accepted is not None and self.clock.wall() - accepted.accepted_at >= RETRY_KEY_TTL_S:
            del self.retry_keys[key]
            return None
        return accepted

    def remember_key(self, key: str, request_id: str, sent: list[dict[str, str]] | None) -> None:
        if len(self.retry_keys) > 100_000:  # drop expired keys now and then
            now = self.clock.wall()
            self.retry_keys = {
                k: v for k, v in self.retry_keys.items() if now - v.accepted_at < RETRY_KEY_TTL_S
            }
        self.retry_keys[key] = AcceptedKey(request_id, self.clock.wall(), sent)

    # --- quota and aggregation units ----------------------------------------------------

    def consumption(self) -> int:
        return self.consumption_by_month.get(self.clock.jst_month(), 0)

    def quota_allows(self, recipients: int) -> bool:
        quota = self.config.quota
        return quota is None or self.consumption() + recipients <= quota

    def unit_names(self) -> list[str]:
        return list(self.unit_names_by_month.get(self.clock.jst_month(), {}))

    def unit_allowed(self, name: str) -> bool:
        used = self.unit_names_by_month.get(self.clock.jst_month(), {})
        return name in used or len(used) < self.config.aggregation_unit_cap

    # --- delivery ----------------------------------------------------------------------

    def deliver(
        self, user_ids: Iterable[str], bubbles: int, unit: str | None, record: SendRecord | None
    ) -> int:
        """Deliver to every non-blocked id once, simulate opens, count everything."""
        blocked, rng, p = self.blocked, self.rng, float(self.config.open_probability)
        unique = list(dict.fromkeys(user_ids))
        delivered = [u for u in unique if u not in blocked] if blocked else unique
        skipped = [u for u in unique if u in blocked] if blocked else []
        opened = [u for u in delivered if rng.random() < p] if p else []
        self.counters.add_many("delivered", delivered)
        if skipped:
            self.counters.add_many("blocked", skipped)
        month = self.clock.jst_month()
        self.consumption_by_month[month] = self.consumption_by_month.get(month, 0) + len(delivered)
        if unit is not None:
            self._count_unit(unit, len(delivered), opened, bubbles)
        if record is not None:
            record.delivered += len(delivered)
            record.openers += len(opened)
            if not record.impressions:
                record.impressions = [0] * bubbles
            for seq in range(bubbles):
                record.impressions[seq] += len(opened)
        return len(delivered)

    def _count_unit(self, name: str, delivered: int, opened: list[str], bubbles: int) -> None:
        self.unit_names_by_month.setdefault(self.clock.jst_month(), {})[name] = None
        stats = self.units.setdefault(name, UnitStats())
        day = self.clock.jst_date()
        stats.delivered_by_day[day] = stats.delivered_by_day.get(day, 0) + delivered
        impressions = stats.impressions_by_day.setdefault(day, [])
        impressions.extend([0] * (bubbles - len(impressions)))
        for seq in range(bubbles):
            impressions[seq] += len(opened)
        for user_id in opened:
            stats.first_open_day.setdefault(user_id, day)
        self.counters.add("delivered_by_unit", name, delivered)
        if opened:
            self.counters.add("opened_by_unit", name, len(opened))

    def new_record(self, kind: str, request_id: str) -> SendRecord:
        record = SendRecord(request_id, kind, self.clock.wall())
        self.records[record.request_id] = record
        return record


LINE_STATE: web.AppKey[LineState] = web.AppKey("line_state", LineState)
