"""Gauges kept current by cheap periodic reads (readiness, orders by status, ...), one task per
service that runs each sample every few seconds, so a gauge moves while nothing else happens."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from mport_shared.logging import get_logger

log = get_logger(__name__)

Sample = Callable[[], Awaitable[None]]


class GaugeSampler:
    """Runs every added sample each `interval_s` (or its own, longer, interval); a failing sample
    is logged and tried next round."""

    def __init__(self, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self._samples: list[tuple[Sample, float]] = []
        self._due: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, sample: Sample, *, interval_s: float | None = None) -> None:
        """`interval_s` for a sample dearer than the others (a count over a whole table)."""
        self._samples.append((sample, max(interval_s or 0.0, self.interval_s)))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gauge-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sample_once(self) -> None:
        now = asyncio.get_running_loop().time()
        for index, (sample, interval_s) in enumerate(self._samples):
            if self._due.get(index, 0.0) > now:
                continue
            self._due[index] = now + interval_s - self.interval_s / 2
            try:
                await asyncio.wait_for(sample(), timeout=max(self.interval_s, 2.0))
            except Exception:
                log.debug("a gauge sample failed", sample=getattr(sample, "__qualname__", ""), exc_info=True)

    async def _run(self) -> None:
        while True:
            await self.sample_once()
            await asyncio.sleep(self.interval_s)
