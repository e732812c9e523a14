"""order-worker's own tables: each order's provisioning with the carrier, the carrier listeners
it registered, plus its outbox and inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mport_shared.db import UtcDateTime
from mport_shared.messaging.tables import messaging_tables
from sqlalchemy import JSON, Float, Index, Integer, MetaData, String, Text, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData()


class CarrierOrderRecord(Base):
    """One of our orders as the order-worker provisions it (see order_worker.domain.Provisioning).

    `version` grows with every change, so two workers (or a notification and a check) acting on one
    order at once cannot both record a change: the second one's UPDATE matches no row."""

    __tablename__ = "carrier_orders"
    __table_args__ = (
        # The reconciler's question, "which open orders are due?", answered from this index alone.
        Index(
            "ix_carrier_orders_due",
            "next_check_at",
            postgresql_where=text("phase IN ('submitting', 'submitted')"),
            sqlite_where=text("phase IN ('submitting', 'submitted')"),
        ),
    )

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)  # the OrderSnapshot, for the outcome events
    traceparent: Mapped[str | None] = mapped_column(String(55))  # the trace the order arrived in
    phase: Mapped[str] = mapped_column(String(20))
    carrier_order_id: Mapped[str | None] = mapped_column(String(100), index=True)
    carrier_state: Mapped[str | None] = mapped_column(String(40))
    expected_completion_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime())
    next_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    check_interval_s: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    failure_code: Mapped[str | None] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class CarrierListener(Base):
    """A hub this order-worker registered at the carrier, so that a worker restarted at the same
    address takes over its predecessor's registration (same callback: the notifications the
    carrier kept for it while it was down arrive) or removes it (a new token)."""

    __tablename__ = "carrier_listeners"

    hub_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    listener_url: Mapped[str] = mapped_column(String(500), index=True)
    # SHA-256 of the whole callback, token included, so the token itself is not stored.
    callback_digest: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


tables = messaging_tables(Base.metadata)
