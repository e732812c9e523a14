"""sms-worker's own tables: one row per verification's SMS, plus its outbox and inbox."""

from __future__ import annotations

from datetime import datetime

from mport_shared.db import UtcDateTime
from mport_shared.messaging.tables import messaging_tables
from sqlalchemy import Integer, MetaData, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData()


class SmsDelivery(Base):
    """The one SMS of a verification (see sms_worker.domain.SendState), keyed by its id, so a
    redelivered VerificationRequested finds it. The code and the text are stored nowhere: only
    what the worker needs to never send twice, and what the gateway reported."""

    __tablename__ = "sms_deliveries"

    verification_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36))
    msisdn: Mapped[str] = mapped_column(String(15))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    gateway_message_id: Mapped[str | None] = mapped_column(String(100))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    failure_code: Mapped[str | None] = mapped_column(String(20))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # The delivery reports: the last one's type and the SMSC's reply, and the final outcome.
    last_report_type: Mapped[int | None] = mapped_column(Integer)
    last_report_reply: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    traceparent: Mapped[str | None] = mapped_column(String(55))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


tables = messaging_tables(Base.metadata)
