"""The order-worker's answer to `mport-ops stuck` (GET /ops/stuck-orders): open carrier orders past
their deadline, and open ones older than the threshold, from its own table only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mport_shared.ops.api import StuckOrders
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_worker.domain import OPEN_PHASES
from order_worker.models import CarrierOrderRecord


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def stuck_carrier_orders(sessions: async_sessionmaker[AsyncSession]) -> StuckOrders:
    async def stuck(older_than_s: float, limit: int) -> dict[str, Any]:
        now = datetime.now(UTC)
        opened_before = now - timedelta(seconds=older_than_s)
        record = CarrierOrderRecord
        where = (
            record.phase.in_(OPEN_PHASES),
            or_(record.deadline_at < now, record.created_at < opened_before),
        )
        async with sessions() as session:
            total = int(await session.scalar(select(func.count()).select_from(record).where(*where)) or 0)
            rows = (
                await session.scalars(select(record).where(*where).order_by(record.created_at).limit(limit))
            ).all()
        orders = []
        for row in rows:
            deadline, created = _aware(row.deadline_at), _aware(row.created_at)
            past_deadline = deadline is not None and deadline < now
            orders.append(
                {
                    "order_id": row.order_id,
                    "why": "past its deadline" if past_deadline else f"open for over {older_than_s:g} s",
                    "phase": row.phase,
                    "carrier_order_id": row.carrier_order_id,
                    "carrier_state": row.carrier_state,
                    "attempts": row.attempts,
                    "created_at": created.isoformat() if created else None,
                    "deadline_at": deadline.isoformat() if deadline else None,
                    "next_check_at": (_aware(row.next_check_at) or now).isoformat()
                    if row.next_check_at
                    else None,
                    "age_s": round((now - created).total_seconds(), 1) if created else None,
                    "last_error": (row.last_error or "")[:200] or None,
                }
            )
        return {"orders": orders, "total": total}

    return stuck
