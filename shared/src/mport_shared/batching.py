"""Group commit: concurrent callers that each want one small database call share one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """`await batcher(item)` returns `flush(items)`'s result for `item`, where `items` are those
    submitted within `window_s` of the first one (at most `max_items`); if `flush` raises, every
    caller of that batch gets the exception.

    A consumer handles many messages at once, each wanting a read or a transaction of its own;
    under load most of the cost of one is the round trip and the session around it, not the rows,
    so one for several messages costs little more than one for a single message. At light load a
    batch holds one item and costs `window_s` of latency."""

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        window_s: float = 0.002,
        max_items: int = 100,
    ) -> None:
        self._flush = flush
        self._window_s = window_s
        self._max_items = max_items
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self._max_items:
            self._start()
        elif self._timer is None:
            self._timer = loop.call_later(self._window_s, self._start)
        return await future

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
