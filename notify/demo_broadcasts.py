"""Demo mode only: two broadcasts that go through the real workflow when the demo city is new.

PR staff `pr` composes, `approver` approves, `pr` schedules them for now; the worker sends them
to the sandbox, which simulates LINE opens, so the analyst's pages have numbers to show on a
first visit. Nothing here is used outside `python -m notify up --demo`.
"""

from __future__ import annotations

import logging

from arq import create_pool
from sqlalchemy import func, select

from notify.broadcasts import review
from notify.broadcasts.scheduling import enqueue_start
from notify.broadcasts.schemas import BroadcastIn
from notify.broadcasts.service import approval_checks, create_broadcast, load
from notify.city import CityConfig
from notify.db import Database
from notify.models import Broadcast, StaffUser
from notify.queue_redis import queue_redis_settings
from notify.settings import Settings
from notify.web.auth import Principal

log = logging.getLogger(__name__)

DEMO_BROADCASTS: tuple[dict[str, object], ...] = (
    {
        "title": "乳幼児健診のお知らせ（デモ）",
        "topic": "childcare",
        "content": {
            "ja": {
                "title": "乳幼児健診のお知らせ",
                "body": "{{ resident.ward or '各区' }}の保健福祉センターで乳幼児健診を行います。"
                "対象のお子さまには個別に通知をお送りしています。",
                "url": "https://www.city.kawasaki.jp/",
            },
            "en": {
                "title": "Child health check-ups",
                "body": "Check-ups for young children at {{ resident.ward or 'each ward' }}'s "
                "health and welfare centre. Families of eligible children receive a letter.",
            },
        },
        "segment": {"type": "child_age", "min": {"years": 0}, "max": {"years": 3, "months": 11}},
        "channels": ["line", "fcm", "email"],
        "channel_policy": "preferred",
    },
    {
        "title": "防災訓練のご案内（デモ）",
        "topic": "disaster",
        "content": {
            "ja": {
                "title": "防災訓練のご案内",
                "body": "今週末、{{ resident.ward or '市内各区' }}で防災訓練を行います。"
                "お近くの避難所を確認しておきましょう。",
            },
            "en": {
                "title": "Disaster drill this weekend",
                "body": "A disaster drill takes place in {{ resident.ward or 'every ward' }} "
                "this weekend. Please check where your nearest shelter is.",
            },
        },
        "channels": ["line", "fcm", "email"],
        "channel_policy": "all",
    },
)


async def send_demo_broadcasts(settings: Settings, db: Database, city: CityConfig) -> list[int]:
    """Create, approve and schedule the demo broadcasts once; returns their ids."""
    async with db.sessionmaker() as session:
        if await session.scalar(select(func.count()).select_from(Broadcast)):
            return []
        staff = {
            row.login: Principal.of_staff(row)
            for row in (await session.execute(select(StaffUser))).scalars()
        }
    author, reviewer = staff.get("pr"), staff.get("approver")
    if author is None or reviewer is None or not settings.redis_url:
        return []
    queue = await create_pool(queue_redis_settings(settings.redis_url))
    ids: list[int] = []
    try:
        for body in DEMO_BROADCASTS:
            data = BroadcastIn.model_validate(body)
            async with db.transaction() as session:
                broadcast = await create_broadcast(session, author, data, city)
                review.submit(session, author, broadcast, broadcast.version)
                broadcast_id = broadcast.id
            async with db.transaction() as session:
                broadcast = await load(session, broadcast_id)
            await approval_checks(broadcast, city, settings)
            async with db.transaction() as session:
                broadcast = await load(session, broadcast_id, for_update=True)
                review.approve(session, reviewer, broadcast, broadcast.version, "デモ")
                send_at = review.schedule(session, author, broadcast, broadcast.version, None)
                version = broadcast.version
            await enqueue_start(queue, broadcast_id, version, send_at)
            ids.append(broadcast_id)
    finally:
        await queue.aclose()
    log.info("demo broadcasts %s scheduled", ids)
    return ids
