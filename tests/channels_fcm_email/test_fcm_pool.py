"""The shared sender pool: order, sharing between batches, stop, cancellation, close."""

from __future__ import annotations

import asyncio

import pytest

from channels.base import DeliveryResult, Outcome
from channels.fcm_pool import SendPool


async def test_concurrent_batches_share_the_pool_and_keep_their_order() -> None:
    pool: SendPool[int] = SendPool(3)
    running = peak = 0

    async def send(item: int) -> DeliveryResult:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * (item % 3))
        running -= 1
        return DeliveryResult.sent(str(item))

    first, second = await asyncio.gather(
        pool.run(list(range(20)), send, lambda r: False),
        pool.run(list(range(100, 110)), send, lambda r: False),
    )
    await pool.close()
    assert [r.provider_id for r in first] == [str(i) for i in range(20)]
    assert [r.provider_id for r in second] == [str(i) for i in range(100, 110)]
    assert peak == 3  # never more sends at once than the pool has tasks


async def test_stop_answer_is_given_to_the_rest_without_sending() -> None:
    pool: SendPool[int] = SendPool(1)
    sent: list[int] = []

    async def send(item: int) -> DeliveryResult:
        sent.append(item)
        if item == 2:
            return DeliveryResult.transient("QUOTA_EXCEEDED", retry_after_s=30)
        return DeliveryResult.sent()

    results = await pool.run([0, 1, 2, 3, 4], send, lambda r: r.error_code == "QUOTA_EXCEEDED")
    await pool.close()
    assert sent == [0, 1, 2]
    assert [r.outcome for r in results] == [Outcome.SENT] * 2 + [Outcome.TRANSIENT] * 3


async def test_a_cancelled_batch_is_not_sent_further_and_errors_do_not_kill_workers() -> None:
    pool: SendPool[int] = SendPool(1)
    sent: list[int] = []

    async def slow(item: int) -> DeliveryResult:
        sent.append(item)
        await asyncio.sleep(0.05)
        return DeliveryResult.sent()

    task = asyncio.create_task(pool.run(list(range(10)), slow, lambda r: False))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def broken(item: int) -> DeliveryResult:
        raise RuntimeError("bug")

    results = await pool.run([1], broken, lambda r: False)
    assert results[0].error_code == "UNEXPECTED"
    assert sent == [0]  # only the one already in flight
    await pool.close()


async def test_close_releases_a_waiting_batch() -> None:
    pool: SendPool[int] = SendPool(1)

    async def never(item: int) -> DeliveryResult:
        await asyncio.sleep(60)
        return DeliveryResult.sent()

    task = asyncio.create_task(pool.run([1, 2], never, lambda r: False))
    await asyncio.sleep(0.01)
    await pool.close()
    with pytest.raises(asyncio.CancelledError):
        await task
