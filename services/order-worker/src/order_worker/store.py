"""Where provisionings live: the carrier_orders table, written together with the outbox in one
transaction per change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from mport_shared.batching import Batcher
from mport_shared.events import Envelope, EventPayload, OrderFailureCode, OrderSnapshot, envelop
from mport_shared.messaging.outbox import add_all_to_outbox
from mport_shared.tracing import continued
from sqlalchemy import Table, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_worker.domain import OPEN_PHASES, Phase, Provisioning
from order_worker.models import CarrierOrderRecord, tables

SOURCE = "/mport/order-worker"

_T: Table = CarrierOrderRecord.__table__  # type: ignore[assignment]
_COLUMNS = (
    _T.c.order_id,
    _T.c.snapshot,
    _T.c.traceparent,
    _T.c.phase,
    _T.c.carrier_order_id,
    _T.c.carrier_state,
    _T.c.expected_completion_at,
    _T.c.deadline_at,
    _T.c.next_check_at,
    _T.c.check_interval_s,
    _T.c.attempts,
    _T.c.last_error,
    _T.c.failure_reason,
    _T.c.failure_code,
    _T.c.finished_at,
    _T.c.version,
)


@dataclass(slots=True)
class Stored:
    """A provisioning as read, with the trace its order arrived in (its later events join it)."""

    provisioning: Provisioning
    traceparent: str | None


class Store(Protocol):
    """What the use cases need of the store; ProvisioningStore is the one on a database, and the
    unit tests have one in memory."""

    async def exists(self, order_id: str) -> bool: ...
    async def add(self, provisioning: Provisioning, *, traceparent: str) -> bool: ...
    async def get(self, order_id: str) -> Stored | None: ...
    async def by_carrier_order_id(self, carrier_order_id: str) -> Stored | None: ...
    async def save(self, stored: Stored) -> bool: ...


@dataclass
class ProvisioningStore:
    sessions: async_sessionmaker[AsyncSession]
    # New orders arrive many at a time (the consumer's prefetch): their look-ups and their first
    # records are each made for all of them at once. Under the bench load this halved the
    # order-worker's database time per order; alone, an order waits at most the window.
    batch_window_s: float = 0.002
    _exists: Batcher[str, bool] = field(init=False)
    _add: Batcher[tuple[Provisioning, str], bool] = field(init=False)

    def __post_init__(self) -> None:
        self._exists = Batcher(self._exist, window_s=self.batch_window_s)
        self._add = Batcher(self._add_all, window_s=self.batch_window_s)

    async def exists(self, order_id: str) -> bool:
        return await self._exists(order_id)

    async def add(self, provisioning: Provisioning, *, traceparent: str) -> bool:
        """Record a new order's provisioning and its events; False if the order was recorded
        before (a redelivered message, or the same order published twice).

        The order id is the key, so this is the consumer's deduplication: an inbox of message ids
        would add a write per order and miss the same order under a new message id."""
        return await self._add((provisioning, traceparent))

    async def _exist(self, order_ids: list[str]) -> list[bool]:
        async with self.sessions() as session:
            # A read needs no transaction: autocommit makes it one round trip, not three.
            connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            found = set(
                (await connection.scalars(select(_T.c.order_id).where(_T.c.order_id.in_(order_ids)))).all()
            )
        return [order_id in found for order_id in order_ids]

    async def _add_all(self, batch: list[tuple[Provisioning, str]]) -> list[bool]:
        rows: dict[str, dict[str, Any]] = {}
        for provisioning, traceparent in batch:
            order_id = str(provisioning.order.order_id)
            # The same order twice in one batch: the first is recorded, the second is the duplicate.
            rows.setdefault(order_id, _values(provisioning) | {
                "order_id": order_id,
                "snapshot": provisioning.order.model_dump(mode="json"),
                "traceparent": traceparent,
                "deadline_at": provisioning.deadline_at,
                "version": 0,
            })  # fmt: skip
        async with self.sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            inserted = set(
                (
                    await session.scalars(
                        insert(_T)
                        .values(list(rows.values()))
                        .on_conflict_do_nothing(index_elements=["order_id"])
                        .returning(_T.c.order_id)
                    )
                ).all()
            )
            recorded: list[bool] = []
            envelopes = []
            for provisioning, traceparent in batch:
                order_id = str(provisioning.order.order_id)
                first = order_id in inserted
                inserted.discard(order_id)
                recorded.append(first)
                if first:
                    envelopes.extend(_envelopes(provisioning, traceparent))
            await add_all_to_outbox(session, tables.outbox, envelopes)
        for (provisioning, _), first in zip(batch, recorded, strict=True):
            if first:
                provisioning.events.clear()
        return recorded

    async def get(self, order_id: str) -> Stored | None:
        return await self._one(_T.c.order_id == order_id)

    async def by_carrier_order_id(self, carrier_order_id: str) -> Stored | None:
        return await self._one(_T.c.carrier_order_id == carrier_order_id)

    async def _one(self, where: Any) -> Stored | None:
        async with self.sessions() as session:
            connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            row = (await connection.execute(select(*_COLUMNS).where(where).limit(1))).first()
        return None if row is None else _stored(row)

    async def save(self, stored: Stored) -> bool:
        """Record a change and its events, if nobody changed the order since it was read (and
        release its lease); False, with nothing written, if somebody did."""
        provisioning = stored.provisioning
        async with self.sessions.begin() as session:
            values = _values(provisioning)
            values.update(version=provisioning.version + 1, lease_owner=None, lease_until=None)
            result = await session.execute(
                update(_T)
                .where(
                    _T.c.order_id == str(provisioning.order.order_id), _T.c.version == provisioning.version
                )
                .values(**values)
            )
            if getattr(result, "rowcount", 0) != 1:
                await session.rollback()
                return False
            await _publish(session, provisioning, stored.traceparent)
        provisioning.version += 1
        provisioning.events.clear()
        return True

    async def claim_due(self, *, owner: str, now: datetime, limit: int, lease_s: float) -> list[Stored]:
        """Lease up to `limit` open orders whose check is due, so that of several workers only one
        looks after each; a lease not released (a killed worker) runs out after `lease_s`."""
        due = (
            select(_T.c.order_id)
            .where(
                _T.c.phase.in_(OPEN_PHASES),
                _T.c.next_check_at <= now,
                or_(_T.c.lease_until.is_(None), _T.c.lease_until < now),
            )
            .order_by(_T.c.next_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serializes writers anyway
        )
        async with self.sessions.begin() as session:
            rows = (
                await session.execute(
                    update(_T)
                    .where(_T.c.order_id.in_(due.scalar_subquery()))
                    .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_s))
                    .returning(*_COLUMNS)
                )
            ).all()
        return [_stored(row) for row in rows]

    async def release(self, stored: Stored, *, retry_at: datetime) -> None:
        """Give up a lease without a change (the check itself failed), to be checked at `retry_at`."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(_T)
                .where(
                    _T.c.order_id == str(stored.provisioning.order.order_id),
                    _T.c.version == stored.provisioning.version,
                )
                .values(lease_owner=None, lease_until=None, next_check_at=retry_at)
            )


def _values(provisioning: Provisioning) -> dict[str, Any]:
    return {
        "phase": provisioning.phase.value,
        "carrier_order_id": provisioning.carrier_order_id,
        "carrier_state": provisioning.carrier_state,
        "expected_completion_at": provisioning.expected_completion_at,
        "next_check_at": provisioning.next_check_at,
        "check_interval_s": provisioning.check_interval_s,
        "attempts": provisioning.attempts,
        "last_error": provisioning.last_error,
        "failure_reason": provisioning.failure_reason,
        "failure_code": provisioning.failure_code.value if provisioning.failure_code else None,
        "finished_at": provisioning.finished_at,
    }


def _stored(row: Any) -> Stored:
    return Stored(
        provisioning=Provisioning(
            order=OrderSnapshot.model_validate(row.snapshot),
            deadline_at=row.deadline_at,
            phase=Phase(row.phase),
            carrier_order_id=row.carrier_order_id,
            carrier_state=row.carrier_state,
            expected_completion_at=row.expected_completion_at,
            attempts=row.attempts,
            check_interval_s=row.check_interval_s,
            next_check_at=row.next_check_at,
            last_error=row.last_error,
            failure_reason=row.failure_reason,
            failure_code=OrderFailureCode(row.failure_code) if row.failure_code else None,
            finished_at=row.finished_at,
            version=row.version,
        ),
        traceparent=row.traceparent,
    )


async def _publish(session: AsyncSession, provisioning: Provisioning, traceparent: str | None) -> None:
    await add_all_to_outbox(session, tables.outbox, _envelopes(provisioning, traceparent))


def _envelopes(provisioning: Provisioning, traceparent: str | None) -> list[Envelope[EventPayload]]:
    order_id = str(provisioning.order.order_id)
    # Later events of an order continue the trace it arrived in, whoever records them.
    with continued(traceparent):
        return [
            envelop(payload, source=SOURCE, correlation_id=order_id, subject=order_id)
            for payload in provisioning.events
        ]
