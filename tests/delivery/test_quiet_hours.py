"""Quiet hours: a normal broadcast waits for the resident's window to open; an emergency
does not wait."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from arq.connections import ArqRedis
from sqlalchemy import select

from notify.db import Database
from notify.delivery.engine import release_held
from notify.delivery.quiet import in_quiet_hours, quiet_until
from notify.delivery.runtime import runtime
from notify.delivery.tables import Delivery
from notify.settings import Settings
from sandbox.runner import SandboxHandles
from tests.delivery.city import Person, broadcast_status, make_broadcast, seed, statuses
from tests.delivery.conftest import run_worker

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("minute", "start", "end", "quiet"),
    [
        (23 * 60, 22 * 60, 7 * 60, True),  # wraps midnight: evening part
        (3 * 60, 22 * 60, 7 * 60, True),  # wraps midnight: morning part
        (7 * 60, 22 * 60, 7 * 60, False),  # the end minute is already open
        (12 * 60, 22 * 60, 7 * 60, False),
        (13 * 60, 12 * 60, 14 * 60, True),  # same-day window
        (14 * 60, 12 * 60, 14 * 60, False),
        (5, None, None, False),
        (5, 0, 0, False),  # empty window
    ],
)
def test_in_quiet_hours(minute: int, start: int | None, end: int | None, quiet: bool) -> None:
    assert in_quiet_hours(minute, start, end) is quiet


def test_quiet_until_is_the_next_end_of_the_window_in_local_time() -> None:
    evening = dt.datetime(2025, 4, 15, 23, 30, tzinfo=TOKYO)
    assert quiet_until(evening, 22 * 60, 7 * 60, TOKYO) == dt.datetime(
        2025, 4, 16, 7, 0, tzinfo=TOKYO
    )
    night = dt.datetime(2025, 4, 16, 2, 0, tzinfo=TOKYO)
    assert quiet_until(night, 22 * 60, 7 * 60, TOKYO) == dt.datetime(
        2025, 4, 16, 7, 0, tzinfo=TOKYO
    )
    noon = dt.datetime(2025, 4, 16, 12, 0, tzinfo=TOKYO)
    assert quiet_until(noon, 22 * 60, 7 * 60, TOKYO) is None


def window_around_now(minutes: int) -> tuple[int, int]:
    local = dt.datetime.now(TOKYO)
    now_min = local.hour * 60 + local.minute
    return (now_min - minutes) % 1440, (now_min + minutes) % 1440


async def test_normal_broadcast_is_held_until_the_window_opens(
    hub_settings: Settings,
    db: Database,
    queue: ArqRedis,
    sandboxes: SandboxHandles,
    ctx: dict[str, Any],
) -> None:
    asleep = window_around_now(60)
    awake = ((asleep[1] + 60) % 1440, (asleep[1] + 120) % 1440)  # a window later today
    town = await seed(
        db,
        [
            Person(line=True, quiet=asleep),
            Person(email=True, quiet=asleep),
            Person(line=True, quiet=awake),
            Person(line=True),
        ],
    )
    broadcast_id = await make_broadcast(db, ["line", "email"])
    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)

    sleeper_line, sleeper_mail = town.addresses[town.residents[0]]["line"], town.all("email")[0]
    assert sandboxes.line.base.counters.get("delivered", sleeper_line) == 0
    assert sandboxes.smtp.state.counters.total("delivered") == 0
    assert sandboxes.line.base.counters.total("delivered") == 2
    assert await statuses(db, broadcast_id) == {
        ("line", "held"): 1,
        ("email", "held"): 1,
        ("line", "sent"): 2,
    }
    assert await broadcast_status(db, broadcast_id) == "sending"  # not done while rows wait
    async with db.transaction() as session:
        held = (
            (await session.execute(select(Delivery).where(Delivery.status == "held")))
            .scalars()
            .all()
        )
    opens = dt.datetime.combine(
        dt.datetime.now(TOKYO).date(), dt.time(asleep[1] // 60, asleep[1] % 60), tzinfo=TOKYO
    )
    if opens < dt.datetime.now(TOKYO):
        opens += dt.timedelta(days=1)
    assert {h.not_before for h in held} == {opens.astimezone(dt.UTC)}

    # The reconciler's clock reaches the end of the window: the held rows go out.
    released = await release_held(runtime(ctx), broadcast_id, opens + dt.timedelta(minutes=1))
    assert released == 2
    await run_worker(hub_settings)
    assert sandboxes.line.base.counters.get("delivered", sleeper_line) == 1
    assert sandboxes.smtp.state.counters.get("delivered", sleeper_mail) == 1
    assert await broadcast_status(db, broadcast_id) == "completed"


async def test_an_emergency_ignores_quiet_hours(
    hub_settings: Settings, db: Database, queue: ArqRedis, sandboxes: SandboxHandles
) -> None:
    town = await seed(db, [Person(line=True, fcm=True, quiet=window_around_now(60))])
    broadcast_id = await make_broadcast(db, ["line", "fcm"], priority="emergency")
    await queue.enqueue_job("delivery.begin", broadcast_id)
    await run_worker(hub_settings)
    assert sandboxes.line.base.counters.get("delivered", town.all("line")[0]) == 1
    assert sandboxes.fcm.state.counters.get("delivered", town.all("fcm")[0]) == 1
    sends = sandboxes.fcm.state.log.entries(path="/v1/")
    assert sends[0]["body"]["message"]["android"]["priority"].lower() == "high"
    assert await broadcast_status(db, broadcast_id) == "completed"
