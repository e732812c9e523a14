"""order-worker's own tables: what it submitted to the carrier, plus its outbox and inbox."""

from __future__ import annotations

from datetime import datetime

from mport_shared.db import UtcDateTime
from mport_shared.messaging.tables import messaging_tables
from sqlalchemy import Integer, MetaData, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData()


class CarrierSubmission(Base):
    """One of our orders as the carrier knows it; the order id is also the carrier's externalId."""

    __tablename__ = "carrier_submissions"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    carrier_order_id: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


tables = messaging_tables(Base.metadata)
