"""The order-worker's own Prometheus metrics: carrier calls, carrier notifications, and its
carrier orders by phase (read every METRICS_INTERVAL_S)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_worker.adapters.carrier import CarrierRejected, CarrierUnavailable
from order_worker.domain import Observation, Phase, Rejected, Seen, Unavailable
from order_worker.models import CarrierOrderRecord

CARRIER_CALLS = Histogram(
    "mport_carrier_call_seconds",
    "Calls to the carrier by operation (submit, get, register_listener, unregister_listener) and "
    "outcome (ok, rejected, unavailable, unknown).",
    ["operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
NOTIFICATIONS = Counter(
    "mport_carrier_notifications_total",
    "Carrier state-change notifications, by what came of them (confirmed, no_change, finished, "
    "unknown, unconfirmed, mismatched, contradicted, refused).",
    ["outcome"],
)


def observe_call(operation: str, seen: Observation, seconds: float) -> None:
    match seen:
        case Seen():
            outcome = "ok"
        case Rejected():
            outcome = "rejected"
        case Unavailable():
            outcome = "unavailable"
        case _:
            outcome = "unknown"
    CARRIER_CALLS.labels(operation, outcome).observe(seconds)


@asynccontextmanager
async def timed_call(operation: str) -> AsyncIterator[None]:
    """Time a carrier call that is not an order's (the listener's hub), outcome by its error."""
    started, outcome = time.perf_counter(), "unknown"
    try:
        yield
        outcome = "ok"
    except CarrierRejected:
        outcome = "rejected"
        raise
    except CarrierUnavailable:
        outcome = "unavailable"
        raise
    finally:
        CARRIER_CALLS.labels(operation, outcome).observe(time.perf_counter() - started)


CARRIER_ORDERS = Gauge(
    "mport_carrier_orders", "The order-worker's orders with the carrier, by phase.", ["phase"]
)
CARRIER_ORDERS_PAST_DEADLINE = Gauge(
    "mport_carrier_orders_past_deadline",
    "Open carrier orders (submitting, submitted) whose deadline has passed, by phase.",
    ["phase"],
)


async def sample_carrier_orders(sessions: async_sessionmaker[AsyncSession]) -> None:
    """One GROUP BY: how many orders per phase, and how many open ones are past their deadline."""
    now = datetime.now(UTC)
    record = CarrierOrderRecord
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    record.phase, func.count(), func.sum(case((record.deadline_at < now, 1), else_=0))
                ).group_by(record.phase)
            )
        ).all()
    seen = {phase: (count, late) for phase, count, late in rows}
    for phase in Phase:
        count, late = seen.get(phase.value, (0, 0))
        CARRIER_ORDERS.labels(phase.value).set(count)
        if phase.is_open:
            CARRIER_ORDERS_PAST_DEADLINE.labels(phase.value).set(late or 0)
