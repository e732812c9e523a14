"""payroll-worker's own tables: deduction lines, monthly services, pay periods, the marks that let
events arrive in any order (failed orders, endings), plus its outbox and inbox."""

from __future__ import annotations

from datetime import datetime

from mport_shared.db import UtcDateTime
from mport_shared.messaging.tables import messaging_tables
from sqlalchemy import BigInteger, Boolean, Index, Integer, MetaData, String, Text, func
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData()


class PayrollCompany(Base):
    """One row per company: every change to a company's lines or periods locks it first, so a
    period close and an event for that period never interleave. `last_closed` freezes every
    period up to it."""

    __tablename__ = "payroll_companies"

    company_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    last_closed: Mapped[str | None] = mapped_column(String(7))


class PayPeriod(Base):
    """A closed pay period of a company (a period with no row is open, unless a later one is closed)."""

    __tablename__ = "pay_periods"

    company_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recurring_lines_generated: Mapped[int] = mapped_column(Integer, default=0)


class DeductionLineRow(Base):
    """A salary deduction line, never edited: a correction is a reversal line of its own."""

    __tablename__ = "deduction_lines"

    line_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36))
    employee_id: Mapped[str] = mapped_column(String(36))
    employee_number: Mapped[str] = mapped_column(String(50))
    order_id: Mapped[str] = mapped_column(String(36))
    product_code: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    wage_type: Mapped[str] = mapped_column(String(20))
    amount_ore: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    period: Mapped[str] = mapped_column(String(7))
    consent_id: Mapped[str | None] = mapped_column(String(36))
    text: Mapped[str] = mapped_column(Text)
    # A reversal: the line it undoes (each line is undone at most once) and why.
    reverses_line_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)
    # The closed period the charge belonged to, when it had to land in a later one.
    moved_from_period: Mapped[str | None] = mapped_column(String(7))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())

    __table_args__ = (
        # One line per (order, kind, period): a redelivered event or a second close adds nothing.
        Index(
            "uq_deduction_lines_order_kind_period",
            "order_id",
            "kind",
            "period",
            unique=True,
            postgresql_where=sql_text("kind <> 'reversal'"),
            sqlite_where=sql_text("kind <> 'reversal'"),
        ),
        Index("ix_deduction_lines_company_period", "company_id", "period"),
        Index("ix_deduction_lines_employee", "company_id", "employee_id"),
    )


class ServiceRow(Base):
    """A monthly charge: a monthly add-on or a plan's difference, active from `start_period`
    until before `end_period`."""

    __tablename__ = "deduction_services"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36), index=True)
    employee_id: Mapped[str] = mapped_column(String(36))
    employee_number: Mapped[str] = mapped_column(String(50))
    product_code: Mapped[str] = mapped_column(String(100))
    product_name: Mapped[str] = mapped_column(Text)
    wage_type: Mapped[str] = mapped_column(String(20))
    monthly_amount_ore: Mapped[int] = mapped_column(BigInteger)
    consent_id: Mapped[str | None] = mapped_column(String(36))
    is_plan: Mapped[bool] = mapped_column(Boolean)
    completed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    start_period: Mapped[str] = mapped_column(String(7))
    end_period: Mapped[str | None] = mapped_column(String(7))


class FailedOrder(Base):
    """An order that failed: never charged, even if its completion arrives after this."""

    __tablename__ = "failed_orders"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36))
    employee_id: Mapped[str] = mapped_column(String(36), index=True)
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ServiceEnding(Base):
    """A service's ending, kept even when it arrives before the service's own completion."""

    __tablename__ = "service_endings"

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(36))
    employee_id: Mapped[str] = mapped_column(String(36), index=True)
    from_period: Mapped[str] = mapped_column(String(7))
    ending_order_id: Mapped[str] = mapped_column(String(36))


tables = messaging_tables(Base.metadata)
