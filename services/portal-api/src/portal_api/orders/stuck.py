"""The portal's answer to `mport-ops stuck` (GET /ops/stuck-orders): orders still `received` or
`submitted` with no change of status for longer than the threshold. No personal data (no msisdn,
no employee): ids, what was ordered and where it stands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mport_shared.ops.api import StuckOrders
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_api.models import Order
from portal_api.orders.domain import OPEN_STATUSES


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def stuck_orders(sessions: async_sessionmaker[AsyncSession]) -> StuckOrders:
    async def stuck(older_than_s: float, limit: int) -> dict[str, Any]:
        now = datetime.now(UTC)
        where = (Order.status.in_(OPEN_STATUSES), Order.updated_at < now - timedelta(seconds=older_than_s))
        columns = (
            Order.id, Order.status, Order.kind, Order.action, Order.product_code,
            Order.carrier_order_id, Order.carrier_state, Order.created_at, Order.updated_at,
        )  # fmt: skip
        async with sessions() as session:
            total = int(await session.scalar(select(func.count()).select_from(Order).where(*where)) or 0)
            rows = (
                await session.execute(select(*columns).where(*where).order_by(Order.updated_at).limit(limit))
            ).all()
        orders = []
        for row in rows:
            updated, created = _aware(row.updated_at), _aware(row.created_at)
            orders.append(
                {
                    "order_id": str(row.id),
                    "status": row.status,
                    "kind": row.kind,
                    "action": row.action,
                    "product_code": row.product_code,
                    "carrier_order_id": row.carrier_order_id,
                    "carrier_state": row.carrier_state,
                    "created_at": created.isoformat() if created else None,
                    "updated_at": updated.isoformat() if updated else None,
                    "age_s": round((now - updated).total_seconds(), 1) if updated else None,
                }
            )
        return {"orders": orders, "total": total}

    return stuck
