"""Sending one batch: claim it, send to whoever is still 'queued', record, let go.

Crash safety, step by step:

1. **Claim** — a conditional UPDATE sets the batch 'sending' with a lease (a token and an
   expiry the running job renews every few seconds). Only one run holds a batch at a time,
   even when Redis was wiped and the reconciler queued it again, or arq re-ran a job.
2. **Load** — after the claim, the rows of the batch still 'queued' (earlier attempts'
   results are already recorded, so a re-run resumes, never restarts).
3. **LINE key** — the batch's X-Line-Retry-Key was stored when the batch was made, before
   any attempt, and is reused on every attempt; LINE answers a repeat of an accepted request
   with 409, which the adapter reports as sent, so a re-run after a kill sends nothing twice.
4. **Send** — through the shared Redis rate limiter.
5. **Record** — every per-recipient result, the endpoint prunes, the fallbacks and the
   batch's next state, in one transaction; a kill before it commits repeats exactly this
   attempt. FCM and email have no idempotency key, so that repeat is bounded by sending at
   most one batch per channel per worker process at a time (`runtime.IN_FLIGHT_PER_PROCESS`).

An FCM or email lane claims and loads its next batch while it sends the current one (a claim
sends nothing, and its lease is renewed from the claim on), so the provider is kept busy
without a second batch in flight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from arq import Retry
from sqlalchemy import select

from channels.base import ChannelName, DeliveryResult, PushMessage, Recipient, SendContext
from notify.db import utcnow
from notify.delivery import batches as batch_state
from notify.delivery import lanes
from notify.delivery.engine import maybe_finish
from notify.delivery.ratelimit import TooLong
from notify.delivery.record import BatchRow
from notify.delivery.render_cache import RenderFailed
from notify.delivery.runtime import IN_FLIGHT_PER_PROCESS, DeliveryRuntime
from notify.delivery.tables import DeliveryBatch
from notify.errors import (
    AlreadyAccepted,
    ChannelError,
    HubError,
    PermanentChannelError,
    RateLimited,
    TransientChannelError,
)
from notify.models import Broadcast
from notify.stats.metrics import record_send
from notify.stats.tracking import broadcast_open_ref, email_links

log = logging.getLogger(__name__)

# A lane (one per channel and process, see below) hands over to a fresh job after this long,
# well inside the job timeout.
LANE_BUDGET_S = 60.0
# Pool loops that keep going in a process whose email lane runs. Every SMTP reply waits for
# this event loop: sixteen LINE batches beside it (the pool's size then; claims, 500-row
# updates) made a 1M send's email crawl at 150-200 messages a second while LINE ran, against
# 1,000-1,200 once LINE was done. The other processes' pools send LINE.
POOL_LOOPS_BESIDE_EMAIL = 2
# A job whose channel has no lane anywhere and that met another channel's lane this many
# times (about 3 s of quick returns) starts its lane beside that one: no other process is
# free, and both channels going slower beats one waiting for the other to run dry. With no
# other process up at all (one worker) it starts its lane at once.
BESIDE_AFTER_TRIES = 6
# A job that found its channel's lane or pool here, alone, goes back to the queue this many
# times for another process to start a second one (`_pass_on`): a few seconds of quick
# returns (`_come_back_in`).
PASS_ON_TRIES = 5


@dataclass(frozen=True, slots=True)
class Outcomes:
    results: list[DeliveryResult]
    rate_limited_s: float | None = None


async def send_batch(
    rt: DeliveryRuntime, batch_id: int, channel: str | None = None, *, job_try: int = 1
) -> str:
    """Send the batch, as the start of its channel's lane or pool in this process (or leave
    it to the one running here); returns what happened (for the job log). `job_try`: arq's
    count of this job's runs, which spaces out its returns to a process that is busy."""
    if channel is None:  # a job enqueued without its channel: look it up
        async with rt.db.transaction() as session:
            channel = await session.scalar(
                select(DeliveryBatch.channel).where(DeliveryBatch.id == batch_id)
            )
        if channel is None:
            return "missing"
    if IN_FLIGHT_PER_PROCESS.get(channel, 1) > 1:
        return await _pool(rt, batch_id, channel, job_try)
    return await _lane(rt, batch_id, channel, job_try)


async def _pass_on(rt: DeliveryRuntime, channel: str, job_try: int) -> bool:
    """Whether a job that found its channel's lane or pool running here should go back to
    the queue for another process, rather than leave its batch to this one: for its first
    few tries (`PASS_ON_TRIES`), while no other process runs the channel and another
    process is up to take it (`lanes.others_up`). A send's first poll often took every
    starter job (`queue.LANE_STARTERS` per channel) into one process, and the channel then
    ran in that process alone while the other stood idle (an e-mail only send: 3,000 mails
    a second from one of two processes). A free process that takes the job starts a second
    lane or pool; a busy one sends it back, until the tries run out."""
    if job_try >= PASS_ON_TRIES:
        return False
    if (await lanes.busy_lane_counts(rt)).get(channel, 0) > 1:
        return False
    return await lanes.others_up(rt)


async def _left_to_running(
    rt: DeliveryRuntime, running: set[str], channel: str, job_try: int
) -> bool:
    """Whether the job leaves its batch to its channel's lane or pool running here
    (`running`: `rt.lanes_here` or `rt.pools`; `lane_calls` makes it look once more before
    it stops). It goes back to the queue instead while `_pass_on` says so. False when none
    runs here, also when it stopped while the job asked Redis: the job then starts one,
    rather than leave its batch to nobody until the reconciler's next round."""
    if channel not in running:
        return False
    if await _pass_on(rt, channel, job_try):
        raise Retry(defer=_come_back_in(job_try, lane_elsewhere=False))
    if channel not in running:
        return False
    rt.lane_calls[channel] = rt.lane_calls.get(channel, 0) + 1
    return True


def _come_back_in(job_try: int, *, lane_elsewhere: bool) -> float:
    """Seconds until a job that met another channel's lane in this process runs again. If a
    lane of its own channel runs elsewhere, that lane takes the batches: the job need not
    hurry. If none runs, a free process should take it soon; arq hands a due job to whichever
    process polls first, and a 1-2 s wait let a busy process take it back again and again
    (a 1M send's FCM stood still 9 s after its lane handed over). Quick returns back off
    until the job starts its lane here (`BESIDE_AFTER_TRIES`)."""
    if lane_elsewhere:
        return 1.0 + secrets.randbelow(1000) / 1000
    return min(0.05 * 2 ** min(job_try, 5), 1.0) * (1 + secrets.randbelow(500) / 1000)


async def _pool(rt: DeliveryRuntime, batch_id: int, channel: str, job_try: int) -> str:
    """LINE: its batches are idempotent (retry key), so a process sends several at once.
    The channel's first job in a process starts a pool there: `IN_FLIGHT_PER_PROCESS` loops,
    each taking the channel's next due batch from the database (the job's own batch first)
    until none is left; a job that finds the pool running leaves its batch to it
    (`lane_calls` makes the pool look once more before it stops). A retry is taken again
    when it is due, or queued with its delay when the pool stops."""
    if await _left_to_running(rt, rt.pools, channel, job_try):
        return "in pool"
    rt.pools.add(channel)
    started = marked = time.monotonic()
    sent = 0
    wait_s: float | None = None  # the rate limiter asked for a long wait: come back then
    own: int | None = batch_id

    async def loop(number: int) -> None:
        nonlocal own, sent, wait_s, marked
        while wait_s is None and time.monotonic() - started < LANE_BUDGET_S:
            if number >= POOL_LOOPS_BESIDE_EMAIL and ChannelName.EMAIL in rt.lanes_here:
                return  # leave this process's event loop to the SMTP conversations
            first, own = own, None
            opened = await batch_state.open_attempt(rt, first, channel=channel)
            if not isinstance(opened, batch_state.Attempt):
                if first is None:  # "none" left (or a claim lost to another process)
                    return
                continue  # the job's own batch is done, not due or held: take the next
            try:
                await _attempt(rt, opened)
            except Retry as retry:  # the batch was given back; its wait applies to all
                wait_s = (retry.defer_score or 1000) / 1000
                return
            sent += 1
            if time.monotonic() - marked > lanes.MARK_EVERY_S:
                marked = time.monotonic()
                await lanes.mark_lane(rt, channel)

    try:
        await lanes.mark_lane(rt, channel)
        while True:
            rt.lane_calls[channel] = 0
            async with asyncio.TaskGroup() as loops:
                for number in range(IN_FLIGHT_PER_PROCESS[channel]):
                    loops.create_task(loop(number))
            over_budget = time.monotonic() - started > LANE_BUDGET_S
            if wait_s is not None or over_budget or not rt.lane_calls.get(channel):
                break
    finally:
        rt.pools.discard(channel)
        await lanes.unmark_lane(rt, channel)
    await batch_state.requeue_retries(rt, channel)
    if wait_s is not None:
        raise Retry(defer=wait_s)
    if over_budget:
        raise Retry(defer=0.01)  # hand over to a fresh run of this job
    return f"{channel} pool: {sent} batches"


async def _lane(rt: DeliveryRuntime, batch_id: int, channel: str, job_try: int) -> str:
    """FCM and email: see notify.delivery.lanes. A job whose channel's lane runs in this
    process leaves its batch to it (`lane_calls` makes the lane look once more before it
    stops); a job that meets the other channel's lane here comes back later, probably to
    another process (or turns that lane, or runs its own beside it: `_meet_lane`); a job
    that finds the process free starts a lane, for its own channel or for one that has work
    and no lane anywhere."""
    if await _left_to_running(rt, rt.lanes_here, channel, job_try):
        return "in lane"
    if rt.lanes_here:
        return await _meet_lane(rt, batch_id, channel, job_try)
    lane = await lanes.choose_lane(rt, channel)
    if rt.lanes_here:  # another job started a lane while we looked: as if it had been first
        return await _lane(rt, batch_id, channel, job_try)
    return await _run_lane(rt, batch_id, channel, lane)


async def _meet_lane(rt: DeliveryRuntime, batch_id: int, channel: str, job_try: int) -> str:
    """A job of `channel` meets another channel's lane in this process."""
    busy = await lanes.busy_lane_counts(rt)
    if channel in rt.lanes_here:  # a lane of its own channel started here while it looked
        return await _lane(rt, batch_id, channel, job_try)
    if len(rt.lanes_here) == 1 and rt.turn is None:
        (running,) = rt.lanes_here
        if lanes.should_turn(busy, running, channel):
            rt.turn = (running, channel)  # the lane here takes this channel's batches now
            await lanes.mark_lane(rt, channel)  # at once: another lane need not turn too
            return f"{running} lane turns to {channel}"
    lane_elsewhere = bool(busy.get(channel))
    if not lane_elsewhere:
        if job_try >= BESIDE_AFTER_TRIES or not await lanes.others_up(rt):
            if channel in rt.lanes_here:  # another job started it while we asked
                return await _lane(rt, batch_id, channel, job_try)
            return await _run_lane(rt, batch_id, channel, channel)
    raise Retry(defer=_come_back_in(job_try, lane_elsewhere=lane_elsewhere))


async def _run_lane(rt: DeliveryRuntime, batch_id: int, channel: str, lane: str) -> str:
    """Run a lane of `lane` here, starting with the job's own batch if it is `lane`'s."""
    rt.lanes_here.add(lane)
    started = time.monotonic()
    sent = 0
    claim: batch_state.Attempt | str | float = "other"  # the batch claimed and not yet sent
    try:
        await lanes.mark_lane(rt, lane)
        marked = time.monotonic()
        if lane == channel:
            claim = _held(rt, await batch_state.open_attempt(rt, batch_id))
        if isinstance(claim, float):
            raise Retry(defer=claim)  # not due yet / leased elsewhere: this job comes back
        while True:
            if (to := _turn_asked(rt, lane)) is not None:
                rt.turn = None
                if to not in rt.lanes_here:
                    _give_back(rt, claim)
                    claim = "other"
                    lane = await _turn(rt, lane, to)
                    marked = time.monotonic()
                    claim = await _claim_next(rt, lane)
            if isinstance(claim, batch_state.Attempt):
                attempt, claim = claim, "sending"  # never given back from here on
                # A retry is picked up again when it is due.
                claim = await _send_and_claim_next(rt, attempt, lane)
                sent += 1
                if time.monotonic() - marked > lanes.MARK_EVERY_S:
                    await lanes.mark_lane(rt, lane)
                    marked = time.monotonic()
            else:
                rt.lane_calls[lane] = 0
                claim = await _claim_next(rt, lane)
            if time.monotonic() - started > LANE_BUDGET_S:
                raise Retry(defer=0.01)  # hand over to a fresh run of this job
            if claim == "none":
                if rt.lane_calls.get(lane, 0) or _turn_asked(rt, lane) is not None:
                    continue  # a job came by meanwhile: look once more (or turn)
                other = await lanes.other_lane_with_work(rt, lane)
                if other is None or other in rt.lanes_here:
                    break
                # This channel ran dry: help with one that still has batches (its own
                # lane elsewhere keeps its one batch in flight; this is one more, here).
                lane = await _turn(rt, lane, other)
                marked = time.monotonic()
                claim = await _claim_next(rt, lane)
    finally:
        rt.lanes_here.discard(lane)
        _give_back(rt, claim)  # the lane stops with a batch claimed ahead
        await lanes.unmark_lane(rt, lane)
        if (to := _turn_asked(rt, lane)) is not None:
            rt.turn = None
            await lanes.unmark_lane(rt, to)  # registered by the job that asked, not taken up
    await batch_state.requeue_retries(rt, lane)
    return f"{lane} lane: {sent} batches"


def _turn_asked(rt: DeliveryRuntime, lane: str) -> str | None:
    """The channel a job asked this process's lane of `lane` to turn to, if one did."""
    return rt.turn[1] if rt.turn is not None and rt.turn[0] == lane else None


async def _turn(rt: DeliveryRuntime, lane: str, to: str) -> str:
    """The lane here stops taking `lane`'s batches and takes `to`'s. It is `to`'s from the
    first step, before any await: a job of `to` that comes by meanwhile must find it here,
    not start a second lane of `to` in this process (as a lone worker's job would)."""
    rt.lanes_here.discard(lane)
    rt.lanes_here.add(to)
    try:
        await lanes.unmark_lane(rt, lane)
        await batch_state.requeue_retries(rt, lane)
        await lanes.mark_lane(rt, to)
    except BaseException:
        rt.lanes_here.discard(to)  # the caller still knows its lane as `lane` and clears that
        raise
    return to


async def _send_and_claim_next(
    rt: DeliveryRuntime, attempt: batch_state.Attempt, lane: str
) -> batch_state.Attempt | str | float:
    """Send and record `attempt` while the lane's next batch is claimed and loaded; returns
    that claim. Still one batch in flight: the next one is only sent after this one is
    recorded, and a claim sends nothing (a killed worker's claim just runs out its lease)."""
    rt.lane_calls[lane] = 0
    following = asyncio.create_task(_claim_next(rt, lane))
    try:
        await _attempt(rt, attempt, following)
        return await asyncio.shield(following)
    except BaseException:  # the claim, whenever it is made, goes back
        following.add_done_callback(lambda claim: _give_back(rt, _result(claim)))
        raise


async def _claim_next(rt: DeliveryRuntime, lane: str) -> batch_state.Attempt | str | float:
    return _held(rt, await batch_state.open_attempt(rt, None, channel=lane))


def _held(
    rt: DeliveryRuntime, opened: batch_state.Attempt | str | float
) -> batch_state.Attempt | str | float:
    """A claim's lease is renewed from the moment it is made (a batch claimed ahead may
    wait for the batch before it longer than the lease)."""
    if isinstance(opened, batch_state.Attempt):
        opened.hold(rt)
    return opened


def _result(task: asyncio.Task[Any]) -> Any:
    return None if task.cancelled() or task.exception() is not None else task.result()


_UNCLAIMS: set[asyncio.Task[None]] = set()


def _give_back(rt: DeliveryRuntime, claim: object) -> None:
    """A batch claimed ahead that the lane will not send: stop renewing its lease and unclaim
    it in the background, so it is due again at once (if the unclaim never runs, the lease
    runs out and the batch is due then)."""
    if not isinstance(claim, batch_state.Attempt):
        return
    claim.let_go()
    task = asyncio.create_task(batch_state.unclaim(rt, claim.batch.id, claim.token))
    _UNCLAIMS.add(task)
    task.add_done_callback(_UNCLAIMS.discard)


async def _attempt(
    rt: DeliveryRuntime,
    attempt: batch_state.Attempt,
    following: asyncio.Task[batch_state.Attempt | str | float] | None = None,
) -> float | None:
    """Send one claimed batch and record it; returns the seconds until its next try.
    `following`: the lane's claim of its next batch, made meanwhile."""
    batch, broadcast, lease, rows = attempt.batch, attempt.broadcast, attempt.token, attempt.rows
    attempt.hold(rt)
    rt.in_flight[broadcast.id] += 1
    next_try: float | None = None
    finished_here = False  # recorded done, with nothing of the broadcast claimed after it
    try:
        if not rows:
            await batch_state.finish_empty(rt, batch.id, lease, broadcast.id, utcnow())
            return None
        sent_s: float | None = None  # how long the provider call took, when one was made
        try:
            message = rt.renders.render(broadcast, batch.channel, batch.language, batch.ward_code)
            if batch.channel == ChannelName.FCM:
                message = _with_open_ref(rt, message, broadcast.id)
        except RenderFailed as failed:
            log.warning(
                "broadcast %s %s/%s: %s", broadcast.id, batch.channel, batch.language, failed
            )
            results = [DeliveryResult.permanent("template_error", failed.error.message)] * len(rows)
            outcome = Outcomes(results)
        else:
            key = await batch_state.retry_key_for(rt, batch)
            try:
                await _wait_for_rate(rt, batch.channel, len(rows))
            except TooLong as too_long:
                await batch_state.unclaim(rt, batch.id, lease)
                raise Retry(defer=too_long.wait_s) from None
            context = SendContext(
                broadcast_id=broadcast.id,
                idempotency_key=key,
                aggregation_unit=batch.aggregation_unit,
                emergency=broadcast.priority == "emergency",
            )
            sending = time.monotonic()
            outcome = await _send(rt, batch.channel, rows, message, context, broadcast)
            sent_s = time.monotonic() - sending
        if outcome.rate_limited_s:
            await rt.limiter.penalize(rt.buckets[batch.channel], outcome.rate_limited_s)
        more_to_send = await _claimed_for(following, broadcast.id)
        recording = time.monotonic()
        record = batch_state.record_attempt(rt, batch, broadcast, rows, outcome.results, lease)
        if sent_s is None:
            next_try = await record
        else:  # counted in Redis while the results are written to the database
            counted = _count_for_metrics(rt, batch.channel, outcome.results, sent_s)
            next_try, _ = await asyncio.gather(record, counted)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "batch %s %s: %s rows, send %.3f s, record %.3f s",
                batch.id,
                batch.channel,
                len(rows),
                sent_s or 0.0,
                time.monotonic() - recording,
            )
        finished_here = next_try is None and not more_to_send
    finally:
        attempt.let_go()
        last_here = _settle(rt, broadcast.id)
    if finished_here and last_here:
        await maybe_finish(rt, broadcast.id)
    return next_try


def _settle(rt: DeliveryRuntime, broadcast_id: int) -> bool:
    """This attempt is over; whether it was the broadcast's last one in flight here.

    Whether a broadcast finished is asked after a record commits (`maybe_finish`), and only
    by the last of this process's attempts of it to end: the others still in flight (a LINE
    pool's loops) will each have committed before that last one asks, and asking after
    every batch was a database round trip per batch. Done without an await in between, the
    count and the answer cannot interleave with another attempt's."""
    last = rt.in_flight[broadcast_id] <= 1
    rt.in_flight[broadcast_id] -= 1
    if rt.in_flight[broadcast_id] <= 0:
        del rt.in_flight[broadcast_id]
    return last


async def _claimed_for(
    following: asyncio.Task[batch_state.Attempt | str | float] | None, broadcast_id: int
) -> bool:
    """Whether the lane's next claim is a batch of the same broadcast: that batch keeps the
    broadcast busy, so asking after this record whether it finished would find it busy."""
    if following is None:
        return False
    try:
        claim = await asyncio.shield(following)
    except Exception:  # the lane sees the error when it takes the claim; record this batch
        return False
    return isinstance(claim, batch_state.Attempt) and claim.broadcast.id == broadcast_id


async def _count_for_metrics(
    rt: DeliveryRuntime, channel: str, results: Sequence[DeliveryResult], latency_s: float
) -> None:
    """Prometheus counters live in Redis (every worker process adds to them); a failure
    here is logged, never allowed to fail the batch."""
    try:
        await record_send(rt.redis, channel, results, latency_s)
    except Exception:
        log.warning("could not count %s results for /metrics", channel, exc_info=True)


def _with_open_ref(rt: DeliveryRuntime, message: PushMessage, broadcast_id: int) -> PushMessage:
    """One signed open reference for the whole broadcast in the shared push data: the app
    returns it with its own device credential (`POST /api/app/opens`), which names the
    device, so the FCM body stays one serialisation per batch."""
    if "open_ref" in message.data:
        return message
    data = {**message.data, "open_ref": broadcast_open_ref(rt.settings, broadcast_id)}
    return dataclasses.replace(message, data=data)


async def _wait_for_rate(rt: DeliveryRuntime, channel: str, recipients: int) -> None:
    cost = 1 if channel == ChannelName.LINE else recipients  # LINE: one multicast request
    await rt.limiter.acquire(rt.buckets[channel], cost)


_NO_EXTRA: Mapping[str, str] = MappingProxyType({})  # read-only: shared by every recipient


def _recipients(
    rt: DeliveryRuntime, channel: str, rows: Sequence[BatchRow], broadcast_id: int
) -> list[Recipient]:
    if channel != ChannelName.EMAIL:
        return [
            Recipient(r.endpoint_id, r.address, r.resident_id, r.language, _NO_EXTRA) for r in rows
        ]
    return [
        Recipient(
            row.endpoint_id,
            row.address,
            row.resident_id,
            row.language,
            email_links(rt.settings, broadcast_id, row.endpoint_id, row.endpoint_token),
        )
        for row in rows
    ]


async def _send(
    rt: DeliveryRuntime,
    channel: str,
    rows: Sequence[BatchRow],
    message: Any,
    context: SendContext,
    broadcast: Broadcast,
) -> Outcomes:
    adapter = rt.channels.get(channel)
    n = len(rows)
    if adapter is None:
        return Outcomes([DeliveryResult.permanent("channel_not_configured")] * n)
    recipients = _recipients(rt, channel, rows, broadcast.id)
    try:
        results = await adapter.send_batch(recipients, message, context)
    except AlreadyAccepted as accepted:  # an adapter may raise it instead of mapping it
        return Outcomes([DeliveryResult.sent(accepted.accepted_request_id)] * n)
    except RateLimited as limited:
        wait = limited.retry_after_s or 1.0
        results = [DeliveryResult.transient("rate_limited", str(limited), retry_after_s=wait)] * n
        return Outcomes(results, rate_limited_s=wait)
    except TransientChannelError as error:
        return Outcomes(
            [DeliveryResult.transient(error.provider_code or error.code, error.message)] * n
        )
    except PermanentChannelError as error:
        return Outcomes(
            [DeliveryResult.permanent(error.provider_code or error.code, error.message)] * n
        )
    except (ChannelError, HubError) as error:
        return Outcomes([DeliveryResult.permanent(error.code, error.message)] * n)
    except Exception as error:  # a bug must not lose the batch: retry it, and say so loudly
        log.exception("broadcast %s: %s adapter raised", broadcast.id, channel)
        return Outcomes([DeliveryResult.transient("internal_error", repr(error)[:200])] * n)
    limited_s = max(
        (r.retry_after_s or 1.0 for r in results if r.error_code in _RATE_LIMIT_CODES),
        default=None,
    )
    return Outcomes(list(results), rate_limited_s=limited_s)


_RATE_LIMIT_CODES = frozenset({"QUOTA_EXCEEDED", "rate_limited", "http_429"})
