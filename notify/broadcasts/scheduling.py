"""Scheduling: an arq job deferred to `send_at`, whose id and argument carry the version.

`start_broadcast(broadcast_id, version)` does nothing unless the broadcast is still scheduled
with that very version, so a reschedule (new version, new job) or a cancel can never let the
old job send. The job is enqueued after the transaction commits; if Redis is unreachable at
that moment, `requeue_due` (a cron job) enqueues it later under the same job id (arq's
`_job_id` de-duplicates).
"""

from __future__ import annotations

import datetime as dt
import logging

from arq.connections import ArqRedis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

JOB_NAME = "start_broadcast"
MAX_AHEAD = dt.timedelta(days=366)
PAST_GRACE = dt.timedelta(minutes=5)


def job_id(broadcast_id: int, version: int) -> str:
    return f"broadcast:{broadcast_id}:v{version}"


async def enqueue_start(
    redis: ArqRedis, broadcast_id: int, version: int, send_at: dt.datetime
) -> bool:
    """True when queued (or already queued under this id); False when Redis failed."""
    try:
        await redis.enqueue_job(
            JOB_NAME,
            broadcast_id,
            version,
            _job_id=job_id(broadcast_id, version),
            _defer_until=send_at,
        )
    except (RedisError, OSError) as exc:
        # The broadcast stays scheduled in the database; requeue_due picks it up.
        log.warning("could not enqueue broadcast %s v%s: %r", broadcast_id, version, exc)
        return False
    return True
