"""The SQLAlchemy repositories behind unit_of_work.SqlAlchemyUnitOfWork: all the SQL of the use
cases, queries and pages. (Signing in, auth/, finds the employee by e-mail or work account itself.)

A request's unit of work carries the session its cookie presents (auth.sessions.SessionGuard):
reading the signed-in employee checks it in the same query, reading their orders first checks it
with one primary-key read, once per request. Status events and other employees' records carry no
guard."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mport_shared.db import insert_if_absent
from mport_shared.events import Billing, Envelope, EventPayload, OrderKind
from mport_shared.messaging.inbox import claim_message
from mport_shared.messaging.outbox import mark_added, outbox_rows
from sqlalchemy import Insert, Select, Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, raiseload

from portal_api.auth.sessions import SessionGuard, fold_session
from portal_api.catalog.policy import PolicyDocument
from portal_api.catalog.products import Catalog, Product
from portal_api.models import (
    HOLDS_MONTHLY_ADDON,
    HOLDS_PLAN_CHANGE,
    HOLDS_SERVICE_END,
    HOLDS_SIM_SERVICE,
    ActiveService,
    Company,
    Consent,
    Employee,
    Order,
    Policy,
    Subscription,
    Verification,
    VerificationRefusal,
    products,
    tables,
)
from portal_api.orders.domain import ChangedOrder, Position, StatusChange
from portal_api.verifications.domain import DeliveryChange, VerificationState

_WROTE = "portal_api.wrote"
ONE_STATEMENT = "portal_api.one_statement"  # set while a one-statement unit of work is on


def note_write(session: AsyncSession) -> None:
    """A repository wrote with a statement of its own (the session's pending objects do not show
    it), so that a unit of work left without a commit rolls it back."""
    if session.info.get(ONE_STATEMENT):
        raise RuntimeError("a one-statement unit of work writes only what it adds, at commit")
    session.info[_WROTE] = True


def wrote(session: AsyncSession) -> bool:
    return bool(session.info.get(_WROTE))


def forget_writes(session: AsyncSession) -> None:
    session.info.pop(_WROTE, None)


# ---- Employees ----------------------------------------------------------------------------------

_EMPLOYEE_ID = "employee_id"
_FOR_ORDERING = (
    select(Employee)
    .where(Employee.id == bindparam(_EMPLOYEE_ID))
    .options(
        joinedload(Employee.subscription).options(
            joinedload(Subscription.services), raiseload(Subscription.sim_cards)
        )
    )
)
_FOR_ORDERING_GUARDED = fold_session(_FOR_ORDERING)


@dataclass(frozen=True, slots=True)
class SqlEmployees:
    session: AsyncSession
    guard: SessionGuard | None = None

    async def for_ordering(self, employee_id: uuid.UUID) -> Employee | None:
        # One query: the company and its policy are joined with every employee (and the session,
        # when it is the signed-in one's); SIM cards are not loaded (placing an order reads none).
        # Built once, the employee a parameter: building it was a twentieth of placing an order.
        guard = self.guard
        params = {_EMPLOYEE_ID: employee_id}
        if guard is None or not guard.guards(employee_id):
            return await self.session.scalar(_FOR_ORDERING, params)
        row = (
            (await self.session.execute(_FOR_ORDERING_GUARDED, params | guard.params)).unique().one_or_none()
        )
        guard.judge(None if row is None else (row[1], row[2]))
        return row[0] if row is not None else None

    async def get(self, employee_id: uuid.UUID) -> Employee | None:
        if self.guard is None or not self.guard.guards(employee_id):
            return await self.session.get(Employee, employee_id)
        return await self._one(select(Employee).where(Employee.id == employee_id), employee_id)

    async def exists(self, employee_id: uuid.UUID) -> bool:
        query = select(Employee).where(Employee.id == employee_id).options(raiseload(Employee.subscription))
        return await self._one(query, employee_id) is not None

    async def _one(self, query: Select[Employee], employee_id: uuid.UUID) -> Employee | None:
        """The employee the query finds; for the signed-in employee, only through a live session
        (SessionRefused otherwise), checked in this very query."""
        guard = self.guard
        if guard is None or not guard.guards(employee_id):
            return await self.session.scalar(query)
        row = (await self.session.execute(guard.fold(query), guard.params)).unique().one_or_none()
        guard.judge(None if row is None else (row[1], row[2]))
        return row[0] if row is not None else None

    async def admins_of(self, company_id: uuid.UUID) -> Sequence[Employee]:
        query = (
            select(Employee)
            .where(Employee.company_id == company_id, Employee.is_admin.is_(True))
            .options(raiseload(Employee.subscription))
            .order_by(Employee.name)
        )
        return (await self.session.scalars(query)).all()

    async def listed(self, limit: int) -> Sequence[Employee]:
        query = (
            select(Employee)
            .join(Company, Employee.company_id == Company.id)
            .options(raiseload(Employee.subscription))
            .order_by(Company.name, Employee.employee_number)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()


# ---- The catalog and the policies -------------------------------------------------------------


@dataclass
class CatalogCache:
    """The catalog is seeded from code (catalog.products) and never edited at run time, so one
    copy per database serves every request; it is reloaded now and then, in case the database is
    reseeded under a running process."""

    max_age_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _catalog: Catalog | None = field(default=None, init=False)
    _loaded_at: float = field(default=0.0, init=False)

    async def get(self, session: AsyncSession) -> Catalog:
        now = self.clock()
        if self._catalog is None or now - self._loaded_at >= self.max_age_s:
            self._catalog = await load_catalog(session)
            self._loaded_at = now
        return self._catalog


async def load_catalog(session: AsyncSession) -> Catalog:
    rows = await session.execute(select(products).order_by(products.c.sort_order, products.c.code))
    return Catalog(
        tuple(
            Product(
                code=r.code,
                name=r.name,
                kind=OrderKind(r.kind),
                category=r.category,
                carrier_product_code=r.carrier_code,
                price_ore=r.price_ore,
                billing=Billing(r.billing),
                data_gb=r.data_gb,
            )
            for r in rows
        )
    )


async def save_catalog(session: AsyncSession, catalog: Sequence[Product]) -> None:
    """Insert the products, or update them where their code is stored already; the order given is
    the order the pages show them in."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for position, product in enumerate(catalog):
        row = {
            "code": product.code,
            "name": product.name,
            "kind": product.kind.value,
            "category": product.category,
            "carrier_code": product.carrier_product_code,
            "price_ore": product.price_ore,
            "billing": product.billing.value,
            "data_gb": product.data_gb,
            "sort_order": position,
        }
        statement = insert(products).values(**row)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[products.c.code],
                set_={k: statement.excluded[k] for k in row if k != "code"},
            )
        )


@dataclass(frozen=True, slots=True)
class SqlProducts:
    session: AsyncSession
    cache: CatalogCache

    async def catalog(self) -> Catalog:
        return await self.cache.get(self.session)


@dataclass(frozen=True, slots=True)
class SqlPolicies:
    session: AsyncSession

    async def of(self, company_id: uuid.UUID) -> PolicyDocument:
        # No query when the company's policy is already in the session: Company.policy is loaded
        # with every employee.
        row = await self.session.get(Policy, company_id)
        return PolicyDocument.model_validate(row.document) if row else PolicyDocument()

    async def save(self, company_id: uuid.UUID, policy: PolicyDocument, *, at: datetime) -> None:
        # Locked while it is replaced, so two administrators' saves at once take turns.
        row = await self.session.get(Policy, company_id, with_for_update=True, populate_existing=True)
        document = policy.model_dump(mode="json")
        if row is None:
            self.session.add(Policy(company_id=company_id, document=document, updated_at=at))
        else:
            row.document = document
            row.updated_at = at


# ---- Orders and subscriptions ------------------------------------------------------------------

_ORDERS: Table = Order.__table__  # type: ignore[assignment]


@dataclass(slots=True)
class SqlOrders:
    session: AsyncSession
    guard: SessionGuard | None = None
    # New orders, written at commit by write_new (not by the ORM's flush).
    staged: list[Order] = field(default_factory=list)

    def add(self, order: Order) -> None:
        self.staged.append(order)

    async def _signed_in(self, employee_id: uuid.UUID) -> None:
        # Before reading the signed-in employee's orders, unless the request has checked its
        # session already (by loading the employee, as placing an order and the pages do).
        if self.guard is not None and self.guard.guards(employee_id):
            await self.guard.check(self.session)

    async def by_key(self, employee_id: uuid.UUID, idempotency_key: str) -> Order | None:
        await self._signed_in(employee_id)
        return await self.session.scalar(
            select(Order).where(Order.employee_id == employee_id, Order.idempotency_key == idempotency_key)
        )

    async def holding_place(self, subscription_id: uuid.UUID, product: Product) -> Order | None:
        # The same conditions as the open-order indexes (orders.domain.holds_the_place says it
        # in Python).
        if product.kind is OrderKind.PLAN:
            where = HOLDS_PLAN_CHANGE
        elif product.is_monthly_addon:
            where = and_(HOLDS_MONTHLY_ADDON, Order.product_code == product.code)
        elif product.kind in (OrderKind.SIM_ORDER, OrderKind.SIM_ACTIVATION):
            where = and_(HOLDS_SIM_SERVICE, Order.product_code == product.code)
        else:
            return None  # a one-off top-up holds no place
        query = select(Order).where(Order.subscription_id == subscription_id, where)
        return await self.session.scalar(query.order_by(Order.created_at).limit(1))

    async def get(self, *, employee_id: uuid.UUID, order_id: uuid.UUID) -> Order | None:
        await self._signed_in(employee_id)
        return await self.session.scalar(
            select(Order).where(Order.id == order_id, Order.employee_id == employee_id)
        )

    async def of_employee(
        self, employee_id: uuid.UUID, *, after: Position | None = None, limit: int | None = None
    ) -> Sequence[Order]:
        await self._signed_in(employee_id)
        # The employee_id index narrows the rows to this employee's, which are few enough (tens
        # to hundreds) to sort without an index of their own.
        query = select(Order).where(Order.employee_id == employee_id)
        if after is not None:
            query = query.where(
                or_(
                    Order.created_at < after.created_at,
                    and_(Order.created_at == after.created_at, Order.id < after.order_id),
                )
            )
        query = query.order_by(Order.created_at.desc(), Order.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return (await self.session.scalars(query)).all()

    async def find(self, order_id: uuid.UUID) -> Order | None:
        return await self.session.get(Order, order_id)

    async def change_status(self, change: StatusChange) -> ChangedOrder | None:
        # One conditional UPDATE: the condition is StatusChange.applies_to, so that of two
        # events at once only the one the rule lets through changes the order.
        conditions: list[Any] = [
            _ORDERS.c.id == change.order_id,
            _ORDERS.c.status.in_([s.value for s in change.allowed_from]),
        ]
        if change.carrier_news_at is not None:
            conditions.append(
                _ORDERS.c.carrier_state_at.is_(None) | (_ORDERS.c.carrier_state_at <= change.carrier_news_at)
            )
        note_write(self.session)
        result = await self.session.execute(
            update(_ORDERS)
            .where(*conditions)
            .values(status=change.to.value, **change.values)
            .returning(
                _ORDERS.c.id,
                _ORDERS.c.status,
                _ORDERS.c.kind,
                _ORDERS.c.subscription_id,
                _ORDERS.c.product_code,
                _ORDERS.c.details,
                _ORDERS.c.action,
                _ORDERS.c.ends_order_id,
            )
        )
        row = result.first()
        if row is None:
            return None
        return ChangedOrder(
            id=row.id,
            status=row.status,
            kind=row.kind,
            subscription_id=row.subscription_id,
            product_code=row.product_code,
            details=row.details,
            action=row.action,
            ends_order_id=row.ends_order_id,
        )

    async def ending(self, subscription_id: uuid.UUID, product_code: str) -> Order | None:
        query = select(Order).where(
            Order.subscription_id == subscription_id, Order.product_code == product_code, HOLDS_SERVICE_END
        )
        return await self.session.scalar(query.order_by(Order.created_at).limit(1))

    async def end_service(self, subscription_id: uuid.UUID, product_code: str, *, at: datetime) -> None:
        note_write(self.session)
        await self.session.execute(
            update(_ORDERS)
            .where(
                _ORDERS.c.subscription_id == subscription_id,
                _ORDERS.c.product_code == product_code,
                HOLDS_MONTHLY_ADDON,
            )
            .values(ended_at=at, updated_at=at)
        )


@dataclass(frozen=True, slots=True)
class SqlSubscriptions:
    session: AsyncSession

    async def get(self, subscription_id: uuid.UUID) -> Subscription | None:
        return await self.session.get(Subscription, subscription_id)

    async def add_service(self, subscription_id: uuid.UUID, product_code: str, order_id: uuid.UUID) -> None:
        # One statement, and no subscription loaded (with its services and SIM cards): the
        # most common completion under load.
        note_write(self.session)
        await insert_if_absent(
            self.session,
            ActiveService,
            {"subscription_id": subscription_id, "product_code": product_code, "order_id": order_id},
            keys=["subscription_id", "product_code"],
        )

    async def remove_service(self, subscription_id: uuid.UUID, product_code: str) -> None:
        note_write(self.session)
        await self.session.execute(
            delete(ActiveService).where(
                ActiveService.subscription_id == subscription_id, ActiveService.product_code == product_code
            )
        )


# ---- Verifications ----------------------------------------------------------------------------

_VERIFICATIONS: Table = Verification.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class SqlVerifications:
    session: AsyncSession
    guard: SessionGuard | None = None

    async def _signed_in(self, employee_id: uuid.UUID) -> None:
        # As SqlOrders: the GET of a verification reads no employee, so it checks the session here.
        if self.guard is not None and self.guard.guards(employee_id):
            await self.guard.check(self.session)

    async def lock_employee(self, employee_id: uuid.UUID) -> None:
        # The employee's row, locked until the transaction ends: two requests of one employee
        # (two codes asked for, two codes typed) take turns, so neither the send limits nor the
        # tries can be outrun by reading counts another request is about to change.
        if self.session.get_bind().dialect.name == "sqlite":
            # No FOR UPDATE there, and the driver starts a transaction only at the first write
            # (reads before it see whatever is committed then): a write that changes nothing
            # takes the database's one write lock now, so the reads that follow are current and
            # the next request waits for this one to end.
            note_write(self.session)
            await self.session.execute(
                update(Employee)
                .where(Employee.id == employee_id)
                .values(verification_failures=Employee.verification_failures)
                .execution_options(synchronize_session=False)
            )
            return
        await self.session.execute(select(Employee.id).where(Employee.id == employee_id).with_for_update())

    def add(self, verification: Verification) -> None:
        self.session.add(verification)

    def add_refusal(self, refusal: VerificationRefusal) -> None:
        self.session.add(refusal)

    async def get(self, *, employee_id: uuid.UUID, verification_id: uuid.UUID) -> Verification | None:
        await self._signed_in(employee_id)
        return await self.session.scalar(
            select(Verification).where(
                Verification.id == verification_id, Verification.employee_id == employee_id
            )
        )

    async def latest_of(self, employee_id: uuid.UUID) -> Verification | None:
        await self._signed_in(employee_id)
        return await self.session.scalar(
            select(Verification)
            .where(Verification.employee_id == employee_id)
            .order_by(Verification.created_at.desc(), Verification.id.desc())
            .limit(1)
        )

    async def find(self, verification_id: uuid.UUID) -> Verification | None:
        return await self.session.get(Verification, verification_id)

    async def replace_pending(self, employee_id: uuid.UUID) -> None:
        note_write(self.session)
        await self.session.execute(
            update(_VERIFICATIONS)
            .where(
                _VERIFICATIONS.c.employee_id == employee_id,
                _VERIFICATIONS.c.state == VerificationState.PENDING.value,
            )
            .values(state=VerificationState.REPLACED.value)
        )

    async def sent_to(self, msisdn: str, *, since: datetime) -> Sequence[datetime]:
        query = select(Verification.created_at).where(
            Verification.msisdn == msisdn, Verification.created_at > since
        )
        return (await self.session.scalars(query)).all()

    async def made_for_company(self, company_id: uuid.UUID, *, since: datetime) -> int:
        query = select(func.count()).where(
            Verification.company_id == company_id, Verification.created_at >= since
        )
        return int(await self.session.scalar(query) or 0)

    async def refusals_of(
        self, company_id: uuid.UUID, *, since: datetime, employee_id: uuid.UUID | None = None
    ) -> Sequence[VerificationRefusal]:
        query = select(VerificationRefusal).where(
            VerificationRefusal.company_id == company_id, VerificationRefusal.created_at >= since
        )
        if employee_id is not None:
            query = query.where(VerificationRefusal.employee_id == employee_id)
        order = (VerificationRefusal.created_at.desc(), VerificationRefusal.id.desc())
        return (await self.session.scalars(query.order_by(*order))).all()

    async def change_delivery(self, change: DeliveryChange) -> uuid.UUID | None:
        # One conditional UPDATE, like SqlOrders.change_status: of two reports at once only the
        # one the rule lets through moves the status, and it never moves back.
        note_write(self.session)
        result = await self.session.execute(
            update(_VERIFICATIONS)
            .where(
                _VERIFICATIONS.c.id == change.verification_id,
                _VERIFICATIONS.c.delivery_status.in_([s.value for s in change.allowed_from]),
            )
            .values(
                delivery_status=change.to.value,
                delivery_reason=change.reason,
                delivery_reason_code=change.reason_code,
                delivery_updated_at=change.at,
            )
            .returning(_VERIFICATIONS.c.employee_id)
        )
        row = result.first()
        return None if row is None else row.employee_id


# ---- Writing what a unit of work adds ----------------------------------------------------------

_CONSENTS: Table = Consent.__table__  # type: ignore[assignment]
# Each mapped class's attribute names and the columns they are stored in.
_COLUMNS: dict[type, dict[str, str]] = {
    cls: {a.key: a.columns[0].key for a in cls.__mapper__.column_attrs} for cls in (Order, Consent)
}
Event = tuple[Envelope[EventPayload], datetime | None]  # an event to publish, and when it expires


def _row_of(new: Order | Consent) -> dict[str, Any]:
    """The columns set on a new mapped object (the ones it was made with), by column name; the
    rest take their columns' defaults."""
    columns = _COLUMNS[type(new)]
    return {columns[key]: value for key, value in vars(new).items() if key in columns}


async def write_new(session: AsyncSession, orders: Sequence[Order], events: Sequence[Event]) -> None:
    """Insert the new orders (each with its consent, when it has one) and the events' outbox rows,
    in the session's transaction, after whatever else the session has pending.

    With Core statements rather than the ORM's flush, which was a tenth of placing an order. On
    PostgreSQL in one statement (the orders and consents as data-modifying WITH clauses of the
    outbox INSERT): one round trip, atomic by itself, so a one-statement unit of work needs no
    transaction around it. On SQLite, in the process, a statement each."""
    if session.new or session.dirty or session.deleted:
        await session.flush()  # as autoflush would, before statements of our own
    if not orders and not events:
        return
    connection = await session.connection()
    with outbox_rows(events) as outbox:
        if connection.dialect.name == "postgresql":
            statement, params = _all_in_one(orders, outbox)
            await connection.execute(statement, params)
        else:
            for order in orders:
                if order.consent is not None:
                    await connection.execute(insert(_CONSENTS), _row_of(order.consent))
                await connection.execute(insert(_ORDERS), _row_of(order))
            if outbox:
                await connection.execute(insert(tables.outbox), outbox[0] if len(outbox) == 1 else outbox)
    if outbox:
        mark_added(session)


def _all_in_one(orders: Sequence[Order], outbox: list[dict[str, Any]]) -> tuple[Insert, dict[str, Any]]:
    """One INSERT of all the rows, and its parameters: each value a parameter named after its
    row's place and its column (r0_text for the consent's, r1_id for the order's, r2_body for the
    event's), so that the statement depends only on which tables get which columns and is built
    and compiled once per such shape. The consent comes before the order that refers to it; the
    foreign key is checked at the end of the statement, when both are in."""
    rows: list[tuple[Table, dict[str, Any]]] = []
    for order in orders:
        if order.consent is not None:
            rows.append((_CONSENTS, _row_of(order.consent)))
        rows.append((_ORDERS, _row_of(order)))
    rows.extend((tables.outbox, row) for row in outbox)
    shape = tuple((table, tuple(row)) for table, row in rows)
    params = {f"r{i}_{column}": value for i, (_, row) in enumerate(rows) for column, value in row.items()}
    return _insert_statement(shape), params


@functools.lru_cache(maxsize=32)
def _insert_statement(shape: tuple[tuple[Table, tuple[str, ...]], ...]) -> Insert:
    inserts = []
    for i, (table, columns) in enumerate(shape):
        values = {c: bindparam(f"r{i}_{c}", type_=table.c[c].type) for c in columns}
        inserts.append(insert(table).values(values))
    *first, last = inserts
    return last.add_cte(*(statement.cte(f"new_{i}") for i, statement in enumerate(first)))


# ---- Messages ------------------------------------------------------------------------------------


@dataclass
class SqlMessages:
    session: AsyncSession
    consumer: str
    # With when each expires (the message's TTL), if it does.
    _staged: list[Event] = field(default_factory=list)

    async def claim(self, message_id: str) -> bool:
        note_write(self.session)
        return await claim_message(self.session, tables.inbox, consumer=self.consumer, message_id=message_id)

    @property
    def staged(self) -> bool:
        return bool(self._staged)

    def publish(self, envelope: Envelope[EventPayload], *, expires_at: datetime | None = None) -> None:
        self._staged.append((envelope, expires_at))

    def take_staged(self) -> list[Event]:
        """The events to write into the outbox at commit (write_new); the relay publishes them
        once that commits."""
        staged, self._staged = self._staged, []
        return staged

    def drop_staged(self) -> None:
        self._staged.clear()
