"""A fixed pool of sender tasks shared by every in-flight batch of one channel.

FCM takes one message per request, so a batch of 500 is 500 requests. The worker runs
many send jobs at once; giving each its own swarm of coroutines would have them queue for
the same connections (a future and a wake-up per request) and leave each batch waiting for
its slowest answer with the other connections idle. One pool of `size` tasks, one shared
queue: connections stay busy and a request never waits for a connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from channels.base import DeliveryResult

Item = TypeVar("Item")


class _Batch(Generic[Item]):
    __slots__ = ("cancelled", "done", "items", "remaining", "results", "send", "stop", "stop_on")

    def __init__(
        self,
        items: Sequence[Item],
        send: Callable[[Item], Awaitable[DeliveryResult]],
        stop_on: Callable[[DeliveryResult], bool],
        done: asyncio.Future[None],
    ) -> None:
        self.items, self.send, self.stop_on, self.done = items, send, stop_on, done
        self.results: list[DeliveryResult | None] = [None] * len(items)
        self.remaining = len(items)
        self.stop: DeliveryResult | None = None  # once set, the rest of the batch gets it
        self.cancelled = False


class SendPool(Generic[Item]):
    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[_Batch[Item], int]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._active: set[_Batch[Item]] = set()

    def _started(self) -> asyncio.Queue[tuple[_Batch[Item], int]]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop, self._queue = loop, asyncio.Queue()
            self._tasks = [loop.create_task(self._work()) for _ in range(self._size)]
        return self._queue

    async def run(
        self,
        items: Sequence[Item],
        send: Callable[[Item], Awaitable[DeliveryResult]],
        stop_on: Callable[[DeliveryResult], bool],
    ) -> list[DeliveryResult]:
        """One result per item, in order; after a result `stop_on` accepts, no more sends."""
        if not items:
            return []
        queue = self._started()
        batch = _Batch(items, send, stop_on, asyncio.get_running_loop().create_future())
        self._active.add(batch)
        for index in range(len(items)):
            queue.put_nowait((batch, index))
        try:
            await batch.done
        except asyncio.CancelledError:
            batch.cancelled = True  # queued items of this batch are skipped, not sent
            raise
        finally:
            self._active.discard(batch)
        return [r for r in batch.results if r is not None]

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch, index = await queue.get()
            if batch.cancelled:
                continue
            result = batch.stop
            if result is None:
                try:
                    result = await batch.send(batch.items[index])
                except Exception as exc:  # a sender must not kill the pool
                    result = DeliveryResult.transient("UNEXPECTED", f"{type(exc).__name__}")
                if batch.stop is None and batch.stop_on(result):
                    batch.stop = result
            batch.results[index] = result
            batch.remaining -= 1
            if batch.remaining == 0 and not batch.done.done():
                batch.done.set_result(None)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for batch in list(self._active):
            if not batch.done.done():
                batch.done.cancel()
        if self._tasks and self._loop is asyncio.get_running_loop():
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks, self._queue, self._loop = [], None, None
