"""The retry schedule, written down once.

A transient failure (5xx, timeout, connection reset, 429) is tried again after the delay
below for the attempt that just failed, with ±25 % jitter so a thousand batches that failed
together do not return together. A provider's Retry-After, when it gives one, wins if it is
longer. A permanent failure is never retried. After `settings.max_attempts` tries (6 by
default) a recipient's failure is final and recorded with its last error code.

    after try   1     2     3      4      5
    wait        2 s   10 s  30 s   2 min  5 min      (then final at try 6)
"""

from __future__ import annotations

import random

SCHEDULE_S: tuple[float, ...] = (2.0, 10.0, 30.0, 120.0, 300.0)
JITTER = 0.25
# A 429 without Retry-After (LINE never sends one): everyone sharing the bucket slows down.
RATE_LIMIT_PENALTY_S = 1.0


def retry_delay(
    failed_attempt: int,
    retry_after_s: float | None = None,
    *,
    scale: float = 1.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after try number `failed_attempt` (1-based) failed transiently.
    `scale` is `settings.retry_delay_scale` (1 in production; tests shrink the schedule)."""
    index = min(max(failed_attempt, 1), len(SCHEDULE_S)) - 1
    base = SCHEDULE_S[index] * scale
    jittered = base * (1.0 + (rng or random).uniform(-JITTER, JITTER))
    return max(jittered, retry_after_s or 0.0)


def is_final(attempts_made: int, max_attempts: int) -> bool:
    """True when a recipient that failed transiently on its `attempts_made`-th try is done."""
    return attempts_made >= max_attempts
