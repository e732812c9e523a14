"""The portal-api's own Prometheus metrics: orders by status (read every METRICS_INTERVAL_S) and
verification codes asked for, refused and how far their SMS got (never a number or a code)."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_api.models import Order
from portal_api.orders.domain import OPEN_STATUSES, OrderStatus

ORDERS = Gauge("mport_orders", "Orders in the portal's database, by status.", ["status"])
OLDEST_OPEN_ORDER_AGE = Gauge(
    "mport_orders_oldest_open_age_seconds",
    "Age (since it was placed) of the oldest order still received or submitted, by status; 0 when none.",
    ["status"],
)
INTAKE_HELD = Counter(
    "mport_intake_held_total", "New orders that waited for the order pipeline to catch up (intake.py)."
)
INTAKE_REFUSED = Counter(
    "mport_intake_refused_total",
    "New orders refused with 503 because the order pipeline stayed behind for INTAKE_WAIT_S.",
)
INTAKE_GATE_CLOSED = Gauge(
    "mport_intake_gate_closed", "1 while new orders wait for the order pipeline to catch up, else 0."
)
VERIFICATION_CODES = Counter(
    "mport_verification_codes_total",
    "Verification codes asked for, by what the portal did (requested: a code goes out by SMS; "
    "refused_country_not_allowed, refused_budget_spent: no SMS).",
    ["outcome"],
)
VERIFICATION_DELIVERIES = Counter(
    "mport_verification_deliveries_total",
    "How far verification SMSes got, as the sms-worker reported it (code_sent, delivered, failed), "
    "counted once per report; `reason` is the failure's code (not_allowed, expired, rejected, "
    "undelivered) or empty.",
    ["status", "reason"],
)


async def sample_orders(sessions: async_sessionmaker[AsyncSession]) -> None:
    """One GROUP BY over the orders: how many per status and, for the open ones, the oldest's age."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Order.status, func.count(), func.min(Order.created_at)).group_by(Order.status)
            )
        ).all()
    now = datetime.now(UTC)
    seen = {status: (count, oldest) for status, count, oldest in rows}
    for status in OrderStatus:
        count, oldest = seen.get(status.value, (0, None))
        ORDERS.labels(status.value).set(count)
        if status.value in OPEN_STATUSES:
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)  # SQLite
            OLDEST_OPEN_ORDER_AGE.labels(status.value).set(
                max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
            )
