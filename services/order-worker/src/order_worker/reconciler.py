"""The reconciler: every open order gets its due check (submit again, or look it up), driven by
the order-worker's own table, so missed notifications, carrier outages and restarts strand nothing."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import timedelta

from mport_shared.logging import get_logger

from order_worker.provisioning import OrderProvisioning
from order_worker.store import ProvisioningStore, Stored

log = get_logger(__name__)


class Reconciler:
    """Leases due orders in batches and checks them, at most `concurrency` carrier calls at once.

    With several order-worker processes on one database, the lease gives each due order to one
    of them; a lease a killed process held runs out after `lease_s` and the order is checked again."""

    def __init__(
        self,
        *,
        provisioning: OrderProvisioning,
        store: ProvisioningStore,
        poll_s: float,
        batch: int,
        concurrency: int,
        lease_s: float,
        owner: str | None = None,
    ) -> None:
        self._provisioning = provisioning
        self._store = store
        self._poll_s = poll_s
        self._batch = batch
        self._lease_s = lease_s
        self._limit = asyncio.Semaphore(concurrency)
        self.owner = owner or f"order-worker-{secrets.token_hex(6)}"
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reconciler")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, *, grace_s: float) -> None:
        """Take no more orders, give the checks in hand `grace_s`, then let their leases run out."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._checks:
            _, pending = await asyncio.wait(self._checks, timeout=grace_s)
            for task in pending:
                task.cancel()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                claimed = await self._store.claim_due(
                    owner=self.owner,
                    now=self._provisioning.clock(),
                    limit=self._batch,
                    lease_s=self._lease_s,
                )
            except Exception:
                log.warning("reconciler could not read due orders; will retry", exc_info=True)
                claimed = []
            for stored in claimed:
                await self._limit.acquire()
                task = asyncio.create_task(self._check(stored))
                self._checks.add(task)
                task.add_done_callback(self._checks.discard)
            if len(claimed) < self._batch and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def _check(self, stored: Stored) -> None:
        try:
            await self._provisioning.check(stored)
        except Exception:
            order_id = str(stored.provisioning.order.order_id)
            log.warning("checking an order failed; will retry", order_id=order_id, exc_info=True)
            with contextlib.suppress(Exception):
                retry_at = self._provisioning.clock() + timedelta(seconds=self._poll_s * 5)
                await self._store.release(stored, retry_at=retry_at)
        finally:
            self._limit.release()
