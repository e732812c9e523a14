"""portal-api's tables: companies, people, sign-in sessions, subscriptions, catalog, policies,
orders, the administrators' audit log and the deductions' read model. The mapped classes are the
entities the use cases work on; they need no session, so fakes hold them too."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from mport_shared.db import UtcDateTime
from mport_shared.events import Billing, OrderKind
from mport_shared.messaging.tables import messaging_tables
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    and_,
    false,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from portal_api.orders.domain import OPEN_STATUSES, OrderStatus


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))

    # Loaded with the company, so with every signed-in employee (Employee.company is joined too):
    # repositories.SqlPolicies then finds it in the session instead of asking the database.
    policy: Mapped[Policy | None] = relationship(lazy="joined", uselist=False, viewonly=True)


class Employee(Base):
    __tablename__ = "employees"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    employee_number: Mapped[str] = mapped_column(String(50))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Self-service is active once the employee has confirmed their number by SMS, as long as the
    # administrator allows it: active implies allowed and a confirmed number.
    self_service_active: Mapped[bool] = mapped_column(Boolean, default=False)
    # The administrator's switch (PATCH /api/v1/admin/employees/{id}); off turns active off too.
    self_service_allowed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # When the employee last confirmed the number they have now; cleared when the number changes.
    phone_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Wrong codes in a row, over all of the employee's codes; at the limit only the administrator
    # can unlock (setting it back to 0). A right code also sets it back to 0.
    verification_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    company: Mapped[Company] = relationship(lazy="joined")
    subscription: Mapped[Subscription | None] = relationship(
        back_populates="employee", lazy="selectin", uselist=False
    )


class WorkAccount(Base):
    """An account at the company's identity provider, bound to the employee it signs in.

    Bound at the first sign-in, found by the provider's verified e-mail; from then on the
    provider's `(iss, sub)` names the employee, whatever e-mail the account later carries, so a
    changed address cannot move an account onto someone else. One account per employee and issuer."""

    __tablename__ = "work_accounts"
    __table_args__ = (UniqueConstraint("employee_id", "issuer"),)

    issuer: Mapped[str] = mapped_column(String(1000), primary_key=True)
    # OpenID Connect Core §2: at most 255 ASCII characters, unique and never reassigned at the issuer.
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    # The e-mail that matched at the binding; kept for the administrator, never used to find anyone.
    bound_email: Mapped[str] = mapped_column(String(320))
    bound_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_sign_in_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebSession(Base):
    """A signed-in session (auth/sessions.py). The cookie carries a random token; this table holds
    only its SHA-256, so a copy of the table gives nobody a live session."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    # Indexed: ending all of one employee's sessions (end_sessions_of) looks them up by employee.
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Moved on at most once a minute (SessionPolicy.touch_every), so a request costs no write.
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id"), unique=True)
    msisdn: Mapped[str] = mapped_column(String(15), unique=True)
    plan_code: Mapped[str] = mapped_column(ForeignKey("products.code"))

    employee: Mapped[Employee] = relationship(back_populates="subscription")
    services: Mapped[list[ActiveService]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ActiveService.activated_at"
    )
    sim_cards: Mapped[list[SimCard]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="SimCard.created_at"
    )


class ActiveService(Base):
    """An add-on active on a subscription (one row per product)."""

    __tablename__ = "active_services"
    __table_args__ = (UniqueConstraint("subscription_id", "product_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    product_code: Mapped[str] = mapped_column(ForeignKey("products.code"))
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    activated_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


class SimCard(Base):
    __tablename__ = "sim_cards"
    __table_args__ = (
        # At most one main SIM per subscription.
        Index(
            "uq_sim_cards_main",
            "subscription_id",
            unique=True,
            postgresql_where=text("is_main"),
            sqlite_where=text("is_main"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    label: Mapped[str] = mapped_column(String(100))
    # The subscription's main SIM (the one "Aktiver nytt SIM" replaces), whatever its label says.
    is_main: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    icc: Mapped[str | None] = mapped_column(String(20))
    # active: in use; ordered: on its way to the employee, to be activated by its ICC number.
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.now())


# The catalog's table. Not a mapped class: the Product model (catalog.products) is what the code
# passes around, immutable and shared by every request; repositories.SqlProducts reads rows into it.
products = Table(
    "products",
    Base.metadata,
    Column("code", String(50), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("category", String(30), nullable=False),
    Column("carrier_code", String(50), nullable=False),
    Column("price_ore", Integer, nullable=False),
    Column("billing", String(10), nullable=False),
    Column("data_gb", Integer),
    Column("sort_order", Integer, nullable=False, default=0),
)


class Policy(Base):
    """A company's mobile policy: who pays for what (see portal_api.catalog.policy)."""

    __tablename__ = "policies"

    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), server_default=func.now(), onupdate=func.now()
    )


class Consent(Base):
    """An employee's prior written agreement to a salary deduction (arbeidsmiljøloven § 14-15):
    the text the confirm dialog showed, the amount and billing it named, who pressed Ok and when.
    Written in the transaction of the order it was given for; never updated or deleted."""

    __tablename__ = "consents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id"), index=True)
    accepted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    amount_ore: Mapped[int] = mapped_column(Integer)
    billing: Mapped[str] = mapped_column(String(10))  # a Billing
    text: Mapped[str] = mapped_column(Text)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("employee_id", "idempotency_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"), index=True)
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id"), index=True)
    # What may be open at once is counted per subscription, not per msisdn (an administrator can
    # correct a number) nor per employee. The open-order indexes below start with it.
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    msisdn: Mapped[str] = mapped_column(String(15))
    product_code: Mapped[str] = mapped_column(ForeignKey("products.code"))
    kind: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    failure_code: Mapped[str | None] = mapped_column(String(40))  # an OrderFailureCode
    carrier_order_id: Mapped[str | None] = mapped_column(String(100))
    # The carrier's own state (TMF622) and when it expects to be done, as the order-worker last
    # reported them; carrier_state_at is when the carrier said so, to ignore news older than that.
    carrier_state: Mapped[str | None] = mapped_column(String(40))
    expected_completion_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    carrier_state_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    employee_charge_ore: Mapped[int] = mapped_column(Integer)
    # What the employee pays: for an add-on, the product's own billing (one-off or monthly).
    billing: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # When a completed monthly add-on was ended ("Avslutt"); until then it holds its place.
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # What the OrderPlaced snapshot said, kept for the order's later events: add (a new service or
    # SIM), modify (a plan change) or delete (ending a monthly add-on: ends_order_id started it).
    action: Mapped[str] = mapped_column(String(10), default="add", server_default=text("'add'"))
    ends_order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    product_name: Mapped[str] = mapped_column(String(100), default="", server_default=text("''"))
    wage_type: Mapped[str | None] = mapped_column(String(10))  # the company's lønnsart for it
    # The employee's acceptance of the deduction; None when the order costs them nothing.
    consent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consents.id"))
    consent: Mapped[Consent | None] = relationship(lazy="raise")


# What may be open at once, enforced by the database (DESIGN §6). Each condition is both an
# index predicate and the WHERE of the friendly check in orders.service, so the two agree.
_OPEN = Order.status.in_(OPEN_STATUSES)
DELETE_ACTION = "delete"
HOLDS_MONTHLY_ADDON: ColumnElement[bool] = and_(
    Order.kind == OrderKind.ADDON.value,
    Order.action != DELETE_ACTION,  # the order ending it holds a place of its own
    Order.billing == Billing.MONTHLY.value,
    Order.status != OrderStatus.FAILED.value,  # open, or completed and not yet ended
    Order.ended_at.is_(None),
)
# One open "Avslutt" per active add-on.
HOLDS_SERVICE_END: ColumnElement[bool] = and_(Order.action == DELETE_ACTION, _OPEN)
HOLDS_PLAN_CHANGE: ColumnElement[bool] = and_(Order.kind == OrderKind.PLAN.value, _OPEN)
HOLDS_SIM_SERVICE: ColumnElement[bool] = and_(
    Order.kind.in_((OrderKind.SIM_ORDER.value, OrderKind.SIM_ACTIVATION.value)), _OPEN
)

OPEN_ORDER_INDEXES = (
    Index(
        "uq_orders_open_monthly_addon",
        Order.subscription_id,
        Order.product_code,
        unique=True,
        postgresql_where=HOLDS_MONTHLY_ADDON,
        sqlite_where=HOLDS_MONTHLY_ADDON,
    ),
    Index(
        "uq_orders_open_service_end",
        Order.subscription_id,
        Order.product_code,
        unique=True,
        postgresql_where=HOLDS_SERVICE_END,
        sqlite_where=HOLDS_SERVICE_END,
    ),
    Index(
        "uq_orders_open_plan_change",
        Order.subscription_id,
        unique=True,
        postgresql_where=HOLDS_PLAN_CHANGE,
        sqlite_where=HOLDS_PLAN_CHANGE,
    ),
    Index(
        "uq_orders_open_sim_service",
        Order.subscription_id,
        Order.product_code,
        unique=True,
        postgresql_where=HOLDS_SIM_SERVICE,
        sqlite_where=HOLDS_SIM_SERVICE,
    ),
)


class Verification(Base):
    """A one-time code sent by SMS to confirm the employee's number (portal_api.verifications).
    Only the code's HMAC is stored (verifications.domain.code_hmac), never the code."""

    __tablename__ = "verifications"
    __table_args__ = (
        # One live code per employee, whatever two requests at once do (a new code replaces the
        # old one in the same transaction that adds it).
        Index(
            "uq_verifications_pending",
            "employee_id",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        # The per-number and per-company send limits count codes by creation time.
        Index("ix_verifications_msisdn_created", "msisdn", "created_at"),
        Index("ix_verifications_company_created", "company_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"), index=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"))
    # The number the code was sent to: confirming is refused once the subscription's differs.
    msisdn: Mapped[str] = mapped_column(String(15))
    code_hmac: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(20))  # a VerificationState
    delivery_status: Mapped[str] = mapped_column(String(20))  # a DeliveryStatus
    delivery_reason: Mapped[str | None] = mapped_column(Text)
    delivery_reason_code: Mapped[str | None] = mapped_column(String(20))  # a VerificationFailureCode
    delivery_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class VerificationRefusal(Base):
    """A code the portal refused to send (a number abroad, the company's daily budget spent):
    one row each, for the administrator to count (SMS pumping)."""

    __tablename__ = "verification_refusals"
    __table_args__ = (Index("ix_verification_refusals_company_created", "company_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"))
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    msisdn: Mapped[str] = mapped_column(String(15))
    reason: Mapped[str] = mapped_column(String(30))  # a verifications.domain.RefusalReason
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AuditEntry(Base):
    """One administrator's change to one employee (admin/): who, when, what, and the changed fields
    before and after. Written in the transaction of the change, so the log misses none and records
    none that did not happen; never updated or deleted by the portal."""

    __tablename__ = "audit_log"
    __table_args__ = (
        # The company's log, newest first (GET /api/v1/admin/audit-log pages by id).
        Index("ix_audit_log_company_id_id", "company_id", "id"),
    )

    # Increasing in insertion order: the log's order, and its keyset for paging.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id"))
    # No cascade: an employee who made or underwent a change stays in the log.
    actor_employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id"))
    subject_employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id"), index=True)
    action: Mapped[str] = mapped_column(String(50))  # an admin.domain.AuditAction
    before: Mapped[dict[str, Any]] = mapped_column(JSON)
    after: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class Deduction(Base):
    """A salary deduction line as the payroll-worker recorded it (PayrollDeductionRecorded or
    PayrollDeductionReversed): the portal's read model for Mine lønnstrekk and the administrator's
    Lønnstrekk. Written only by the deduction events' handler, one row per line id, never changed:
    a correction is a line of its own (kind reversal, negative amount, reverses_line_id). No
    foreign keys: the payroll-worker's word is recorded as it is, whoever it names."""

    __tablename__ = "deductions"
    __table_args__ = (
        # The administrator's view: a company's period. The employee's: their lines by period.
        Index("ix_deductions_company_period", "company_id", "period"),
        Index("ix_deductions_employee_period", "employee_id", "period"),
    )

    line_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    employee_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    employee_number: Mapped[str] = mapped_column(String(50))
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    product_code: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20))  # a DeductionLineKind
    wage_type: Mapped[str] = mapped_column(String(20))
    # Øre deducted from the salary: positive for a deduction, negative for a reversal.
    amount_ore: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM, a calendar month in Oslo time
    consent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    text: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reverses_line_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reversal_reason: Mapped[str | None] = mapped_column(Text)


tables = messaging_tables(Base.metadata)
