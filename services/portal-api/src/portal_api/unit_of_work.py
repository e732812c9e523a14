"""The unit of work: one transaction's reads and writes, through repositories narrow enough that a
fake of each is a few lines. Use cases take a UnitOfWork; SqlAlchemyUnitOfWork is the real one,
over the request's (or the message handler's) session; tests pass a fake."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from mport_shared.events import Envelope, EventPayload
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_api.admin.repositories import SqlAuditLog, SqlStaff
from portal_api.admin.service import AuditLog, Staff
from portal_api.auth.sessions import SessionGuard
from portal_api.catalog.policy import PolicyDocument
from portal_api.catalog.products import Catalog, Product
from portal_api.models import (
    OPEN_ORDER_INDEXES,
    Employee,
    Order,
    Subscription,
    Verification,
    VerificationRefusal,
)
from portal_api.orders.domain import ChangedOrder, Position, StatusChange
from portal_api.payroll.repositories import SqlDeductions
from portal_api.payroll.service import Deductions
from portal_api.repositories import (
    ONE_STATEMENT,
    CatalogCache,
    SqlEmployees,
    SqlMessages,
    SqlOrders,
    SqlPolicies,
    SqlProducts,
    SqlSubscriptions,
    SqlVerifications,
    forget_writes,
    write_new,
    wrote,
)
from portal_api.verifications.domain import DeliveryChange


class OrderConflict(Exception):
    """The commit broke a rule the database enforces: another request committed first."""


class IdempotencyKeyTaken(OrderConflict):
    """This employee's Idempotency-Key already made an order."""


class PlaceTaken(OrderConflict):
    """Another open (or active) order holds the place the new one would take (an open-order index)."""


class PendingVerificationTaken(OrderConflict):
    """Another request's new code for this employee committed first (one pending code each)."""


class Employees(Protocol):
    async def for_ordering(self, employee_id: uuid.UUID) -> Employee | None:
        """With what placing an order reads: company, policy, subscription, its active services."""
        ...

    async def get(self, employee_id: uuid.UUID) -> Employee | None:
        """With the company, the subscription, its active services and SIM cards."""
        ...

    async def exists(self, employee_id: uuid.UUID) -> bool: ...

    async def admins_of(self, company_id: uuid.UUID) -> Sequence[Employee]: ...

    async def listed(self, limit: int) -> Sequence[Employee]:
        """Everyone, by company name and employee number (the development sign-in lists them)."""
        ...


class Products(Protocol):
    async def catalog(self) -> Catalog: ...


class Policies(Protocol):
    async def of(self, company_id: uuid.UUID) -> PolicyDocument: ...

    async def save(self, company_id: uuid.UUID, policy: PolicyDocument, *, at: datetime) -> None:
        """The company's policy from now on (for new orders: placed ones keep their snapshot)."""
        ...


class Orders(Protocol):
    def add(self, order: Order) -> None: ...

    async def by_key(self, employee_id: uuid.UUID, idempotency_key: str) -> Order | None: ...

    async def holding_place(self, subscription_id: uuid.UUID, product: Product) -> Order | None:
        """The earliest order that holds the place a new order of `product` would take
        (orders.domain.holds_the_place), if any."""
        ...

    async def get(self, *, employee_id: uuid.UUID, order_id: uuid.UUID) -> Order | None:
        """One of the employee's orders; another employee's is indistinguishable from none."""
        ...

    async def of_employee(
        self, employee_id: uuid.UUID, *, after: Position | None = None, limit: int | None = None
    ) -> Sequence[Order]:
        """Newest first by (created_at, id): those after `after` in that order, at most `limit`."""
        ...

    async def find(self, order_id: uuid.UUID) -> Order | None:
        """Anyone's order (for status events, which name the order only)."""
        ...

    async def change_status(self, change: StatusChange) -> ChangedOrder | None:
        """Apply the change if it applies to the order as stored now; the changed order, or None."""
        ...

    async def ending(self, subscription_id: uuid.UUID, product_code: str) -> Order | None:
        """The open order ending this add-on (Avslutt), if any (orders.domain.ends_the_service)."""
        ...

    async def end_service(self, subscription_id: uuid.UUID, product_code: str, *, at: datetime) -> None:
        """The orders holding the add-on's place (completed, not ended) are ended now."""
        ...


class Subscriptions(Protocol):
    async def get(self, subscription_id: uuid.UUID) -> Subscription | None: ...

    async def add_service(self, subscription_id: uuid.UUID, product_code: str, order_id: uuid.UUID) -> None:
        """Record the add-on as active, unless it is already."""
        ...

    async def remove_service(self, subscription_id: uuid.UUID, product_code: str) -> None:
        """The add-on is no longer active (it is gone already: nothing changes)."""
        ...


class Verifications(Protocol):
    async def lock_employee(self, employee_id: uuid.UUID) -> None:
        """Hold the employee's row until the transaction ends (their requests take turns)."""
        ...

    def add(self, verification: Verification) -> None: ...

    def add_refusal(self, refusal: VerificationRefusal) -> None: ...

    async def get(self, *, employee_id: uuid.UUID, verification_id: uuid.UUID) -> Verification | None:
        """One of the employee's verifications; another employee's is indistinguishable from none."""
        ...

    async def latest_of(self, employee_id: uuid.UUID) -> Verification | None: ...

    async def find(self, verification_id: uuid.UUID) -> Verification | None:
        """Anyone's (for delivery reports, which name the verification only)."""
        ...

    async def replace_pending(self, employee_id: uuid.UUID) -> None:
        """The employee's pending code, if any, becomes replaced."""
        ...

    async def sent_to(self, msisdn: str, *, since: datetime) -> Sequence[datetime]:
        """When codes were made for this number after `since`."""
        ...

    async def made_for_company(self, company_id: uuid.UUID, *, since: datetime) -> int: ...

    async def refusals_of(
        self, company_id: uuid.UUID, *, since: datetime, employee_id: uuid.UUID | None = None
    ) -> Sequence[VerificationRefusal]:
        """The codes refused to the company's people (or to one of them) since then, newest
        first: for the administrator."""
        ...

    async def change_delivery(self, change: DeliveryChange) -> uuid.UUID | None:
        """Apply the change if it applies to the delivery status stored now; the verification's
        employee, or None."""
        ...


class Messages(Protocol):
    """The inbox and the outbox: what this service handled, and what it publishes on commit."""

    async def claim(self, message_id: str) -> bool:
        """Record the message as handled; False if it was before (it must have no effect)."""
        ...

    def publish(self, envelope: Envelope[EventPayload], *, expires_at: datetime | None = None) -> None:
        """Publish the event if, and only if, this unit of work commits; `expires_at`: the
        message's time to live ends then (the relay, or the broker, drops it unsent)."""
        ...


class UnitOfWork(Protocol):
    # Read-only, so that an implementation may hold its own repository classes.
    @property
    def employees(self) -> Employees: ...
    @property
    def products(self) -> Products: ...
    @property
    def policies(self) -> Policies: ...
    @property
    def orders(self) -> Orders: ...
    @property
    def subscriptions(self) -> Subscriptions: ...
    @property
    def verifications(self) -> Verifications: ...
    @property
    def messages(self) -> Messages: ...
    @property
    def staff(self) -> Staff: ...
    @property
    def audit_log(self) -> AuditLog: ...
    @property
    def deductions(self) -> Deductions: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""
        ...

    async def commit(self) -> None:
        """Make the writes and the events to publish durable together; raises an OrderConflict
        (having rolled back) if another request got there first."""
        ...

    async def end_reads(self) -> None:
        """End the transaction that reading began, keeping what was read: called before waiting
        on another service, so that no database connection is held meanwhile."""
        ...

    async def rollback(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SqlUnitsOfWork:
    """Makes the units of work of one portal: on a session the caller has (a request's), or on a
    session of their own (a message handler's)."""

    sessions: async_sessionmaker[AsyncSession]
    catalog: CatalogCache = field(default_factory=CatalogCache)
    consumer: str = "portal-api"

    def on(
        self, session: AsyncSession, *, guard: SessionGuard | None = None, one_statement: bool = False
    ) -> SqlAlchemyUnitOfWork:
        """`guard`: the signed-in session of the request, checked when it reads the employee.
        `one_statement`: see SqlAlchemyUnitOfWork."""
        return SqlAlchemyUnitOfWork(
            session, catalog=self.catalog, consumer=self.consumer, guard=guard, one_statement=one_statement
        )

    @asynccontextmanager
    async def new(self, *, guard: SessionGuard | None = None) -> AsyncIterator[SqlAlchemyUnitOfWork]:
        async with self.sessions() as session:
            yield self.on(session, guard=guard)


class SqlAlchemyUnitOfWork:
    """A unit of work on one SQLAlchemy session (its caller closes it). Reads outside `async with`
    are fine: they change nothing, and the session's transaction ends with the session.

    A one-statement unit of work (placing an order) writes only what it adds (orders and events),
    and on PostgreSQL writes it at commit in one statement, atomic by itself (write_new); so it
    runs without a transaction (autocommit), each read a statement of its own, as each is in
    READ COMMITTED anyway. No BEGIN and no COMMIT: a top-up is two round trips, the employee and
    the write. Any other write in it is refused before it is made."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        catalog: CatalogCache,
        consumer: str,
        guard: SessionGuard | None = None,
        one_statement: bool = False,
    ) -> None:
        self.session = session
        self.guard = guard
        self._one_statement = one_statement
        self.employees = SqlEmployees(session, guard)
        self.products = SqlProducts(session, catalog)
        self.policies = SqlPolicies(session)
        self.orders = SqlOrders(session, guard)
        self.subscriptions = SqlSubscriptions(session)
        self.verifications = SqlVerifications(session, guard)
        self.messages = SqlMessages(session, consumer=consumer)
        self.staff = SqlStaff(session)
        self.audit_log = SqlAuditLog(session)
        self.deductions = SqlDeductions(session)

    async def __aenter__(self) -> Self:
        if self._one_statement:
            self.session.info[ONE_STATEMENT] = True
            if self.session.get_bind().dialect.name == "postgresql":
                await self.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Only what was written is undone: a rollback also expires every object the session
        # loaded, and what a use case read (an earlier order, say) is what it answers with.
        try:
            if exc_type is not None or self._uncommitted_writes():
                await self.rollback()
        finally:
            self.session.info.pop(ONE_STATEMENT, None)

    def _uncommitted_writes(self) -> bool:
        session = self.session
        return bool(
            session.new
            or session.dirty
            or session.deleted
            or wrote(session)
            or self.orders.staged
            or self.messages.staged
        )

    async def commit(self) -> None:
        session = self.session
        if self._one_statement and (session.new or session.dirty or session.deleted):
            raise RuntimeError("a one-statement unit of work writes only the orders and events it adds")
        try:
            orders, self.orders.staged = self.orders.staged, []
            await write_new(session, orders, self.messages.take_staged())
            await self.session.commit()
        except IntegrityError as error:
            await self.rollback()
            conflict = conflict_of(error)
            if conflict is None:
                raise
            raise conflict from error
        finally:
            forget_writes(self.session)

    async def end_reads(self) -> None:
        # A commit of nothing: the session keeps what it loaded (expire_on_commit=False) and gives
        # its connection back. On make run's SQLite that is the portal's only connection, which
        # every other request would otherwise wait for until the other service answered.
        if self._uncommitted_writes():
            raise RuntimeError("end_reads with writes not committed")
        await self.session.commit()

    async def rollback(self) -> None:
        self.orders.staged.clear()
        self.messages.drop_staged()
        forget_writes(self.session)
        await self.session.rollback()


def conflict_of(error: IntegrityError) -> OrderConflict | None:
    """The rule an INSERT of an order or a verification broke, if it is one of ours. PostgreSQL
    names the index or constraint in its message; SQLite names the columns, and only the
    open-order indexes start with orders.subscription_id."""
    message = str(error.orig)
    if "uq_verifications_pending" in message or "verifications.employee_id" in message:
        return PendingVerificationTaken()
    if "orders.subscription_id" in message or any(str(i.name) in message for i in OPEN_ORDER_INDEXES):
        return PlaceTaken()
    if "uq_orders_employee_id" in message or "orders.employee_id, orders.idempotency_key" in message:
        return IdempotencyKeyTaken()
    return None
