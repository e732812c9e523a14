"""A unit of work in memory, for unit tests of the use cases: no database, no broker, no I/O.

It keeps what the database would: committed rows, and the rules PostgreSQL enforces at commit
(one order per employee and Idempotency-Key; what holds a place, orders.domain.holds_the_place).
`before_commit` lets a test play another request that commits first."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from mport_shared.events import Envelope, EventPayload
from portal_api.admin.policy import PolicyUnitOfWork
from portal_api.admin.service import AdminUnitOfWork, LoggedChange, MsisdnTaken, StaffPosition
from portal_api.catalog.policy import PolicyDocument
from portal_api.catalog.products import Catalog, Product
from portal_api.models import (
    ActiveService,
    AuditEntry,
    Deduction,
    Employee,
    Order,
    Subscription,
    Verification,
    VerificationRefusal,
)
from portal_api.orders.domain import (
    OPEN_STATUSES,
    ChangedOrder,
    Position,
    StatusChange,
    ends_the_service,
    holds_the_place,
    takes_a_place,
)
from portal_api.payroll.service import PayrollUnitOfWork
from portal_api.unit_of_work import IdempotencyKeyTaken, PendingVerificationTaken, PlaceTaken, UnitOfWork
from portal_api.verifications.domain import DeliveryChange, DeliveryStatus, VerificationState


@dataclass
class FakeEmployees:
    people: dict[uuid.UUID, Employee] = field(default_factory=dict)

    async def for_ordering(self, employee_id: uuid.UUID) -> Employee | None:
        return self.people.get(employee_id)

    async def get(self, employee_id: uuid.UUID) -> Employee | None:
        return self.people.get(employee_id)

    async def exists(self, employee_id: uuid.UUID) -> bool:
        return employee_id in self.people

    async def admins_of(self, company_id: uuid.UUID) -> Sequence[Employee]:
        return sorted(
            (e for e in self.people.values() if e.company_id == company_id and e.is_admin),
            key=lambda e: e.name,
        )

    async def listed(self, limit: int) -> Sequence[Employee]:
        return sorted(self.people.values(), key=lambda e: e.employee_number)[:limit]


@dataclass
class FakeProducts:
    known: Catalog

    async def catalog(self) -> Catalog:
        return self.known


@dataclass
class FakePolicies:
    by_company: dict[uuid.UUID, PolicyDocument] = field(default_factory=dict)

    pending: dict[uuid.UUID, PolicyDocument] = field(default_factory=dict)

    async def of(self, company_id: uuid.UUID) -> PolicyDocument:
        return self.by_company.get(company_id, PolicyDocument())

    async def save(self, company_id: uuid.UUID, policy: PolicyDocument, *, at: datetime) -> None:
        self.pending[company_id] = policy  # takes effect at commit


@dataclass
class FakeOrders:
    catalog: Catalog
    stored: list[Order] = field(default_factory=list)
    pending: list[Order] = field(default_factory=list)

    def add(self, order: Order) -> None:
        self.pending.append(order)

    async def by_key(self, employee_id: uuid.UUID, idempotency_key: str) -> Order | None:
        return next(
            (o for o in self.stored if o.employee_id == employee_id and o.idempotency_key == idempotency_key),
            None,
        )

    async def holding_place(self, subscription_id: uuid.UUID, product: Product) -> Order | None:
        holders = [
            o for o in self.stored if o.subscription_id == subscription_id and holds_the_place(o, product)
        ]
        return min(holders, key=lambda o: o.created_at, default=None)

    async def get(self, *, employee_id: uuid.UUID, order_id: uuid.UUID) -> Order | None:
        return next((o for o in self.stored if o.id == order_id and o.employee_id == employee_id), None)

    async def of_employee(
        self, employee_id: uuid.UUID, *, after: Position | None = None, limit: int | None = None
    ) -> Sequence[Order]:
        mine = sorted(
            (o for o in self.stored if o.employee_id == employee_id),
            key=lambda o: (o.created_at, o.id),
            reverse=True,
        )
        if after is not None:
            mine = [o for o in mine if (o.created_at, o.id) < (after.created_at, after.order_id)]
        return mine[:limit]

    async def find(self, order_id: uuid.UUID) -> Order | None:
        return next((o for o in self.stored if o.id == order_id), None)

    async def change_status(self, change: StatusChange) -> ChangedOrder | None:
        order = await self.find(change.order_id)
        if order is None or not change.applies_to(order.status, order.carrier_state_at):
            return None
        order.status = change.to.value
        for name, value in change.values.items():
            setattr(order, name, value)
        return ChangedOrder(
            id=order.id,
            status=order.status,
            kind=order.kind,
            subscription_id=order.subscription_id,
            product_code=order.product_code,
            details=order.details,
            action=order.action or "add",
            ends_order_id=order.ends_order_id,
        )

    async def ending(self, subscription_id: uuid.UUID, product_code: str) -> Order | None:
        product = self.catalog.get(product_code)
        assert product is not None
        endings = [
            o for o in self.stored if o.subscription_id == subscription_id and ends_the_service(o, product)
        ]
        return min(endings, key=lambda o: o.created_at, default=None)

    async def end_service(self, subscription_id: uuid.UUID, product_code: str, *, at: datetime) -> None:
        product = self.catalog.get(product_code)
        assert product is not None
        for o in self.stored:
            if o.subscription_id == subscription_id and holds_the_place(o, product):
                o.ended_at = at
                o.updated_at = at

    def conflict(self, order: Order) -> IdempotencyKeyTaken | PlaceTaken | None:
        """What the database's constraints would say to storing `order` now."""
        if any(
            o.employee_id == order.employee_id and o.idempotency_key == order.idempotency_key
            for o in self.stored
        ):
            return IdempotencyKeyTaken()
        product = self.catalog.get(order.product_code)
        assert product is not None
        held = (o for o in self.stored if o.subscription_id == order.subscription_id)
        if order.action == "delete":
            return PlaceTaken() if any(ends_the_service(o, product) for o in held) else None
        if takes_a_place(product) and any(holds_the_place(o, product) for o in held):
            return PlaceTaken()
        return None


@dataclass
class FakeSubscriptions:
    by_id: dict[uuid.UUID, Subscription] = field(default_factory=dict)

    async def get(self, subscription_id: uuid.UUID) -> Subscription | None:
        return self.by_id.get(subscription_id)

    async def add_service(self, subscription_id: uuid.UUID, product_code: str, order_id: uuid.UUID) -> None:
        services = self.by_id[subscription_id].services
        if not any(s.product_code == product_code for s in services):
            services.append(ActiveService(product_code=product_code, order_id=order_id))

    async def remove_service(self, subscription_id: uuid.UUID, product_code: str) -> None:
        subscription = self.by_id[subscription_id]
        subscription.services = [s for s in subscription.services if s.product_code != product_code]


@dataclass
class FakeVerifications:
    """Verifications in memory. Changes to stored rows take effect at once (they are the same
    objects a use case changes); new rows and refusals only at commit, where the one-pending-code
    index is checked as the database would."""

    stored: list[Verification] = field(default_factory=list)
    pending: list[Verification] = field(default_factory=list)
    refusals: list[VerificationRefusal] = field(default_factory=list)
    pending_refusals: list[VerificationRefusal] = field(default_factory=list)
    locked: list[uuid.UUID] = field(default_factory=list)

    async def lock_employee(self, employee_id: uuid.UUID) -> None:
        self.locked.append(employee_id)

    def add(self, verification: Verification) -> None:
        self.pending.append(verification)

    def add_refusal(self, refusal: VerificationRefusal) -> None:
        self.pending_refusals.append(refusal)

    async def get(self, *, employee_id: uuid.UUID, verification_id: uuid.UUID) -> Verification | None:
        return next(
            (v for v in self.stored if v.id == verification_id and v.employee_id == employee_id), None
        )

    async def latest_of(self, employee_id: uuid.UUID) -> Verification | None:
        mine = [v for v in self.stored if v.employee_id == employee_id]
        return max(mine, key=lambda v: (v.created_at, v.id), default=None)

    async def find(self, verification_id: uuid.UUID) -> Verification | None:
        return next((v for v in self.stored if v.id == verification_id), None)

    async def replace_pending(self, employee_id: uuid.UUID) -> None:
        for v in self.stored:
            if v.employee_id == employee_id and v.state == VerificationState.PENDING:
                v.state = VerificationState.REPLACED.value

    async def sent_to(self, msisdn: str, *, since: datetime) -> Sequence[datetime]:
        return [v.created_at for v in self.stored if v.msisdn == msisdn and v.created_at > since]

    async def made_for_company(self, company_id: uuid.UUID, *, since: datetime) -> int:
        return sum(1 for v in self.stored if v.company_id == company_id and v.created_at >= since)

    async def refusals_of(
        self, company_id: uuid.UUID, *, since: datetime, employee_id: uuid.UUID | None = None
    ) -> Sequence[VerificationRefusal]:
        found = [
            r
            for r in self.refusals
            if r.company_id == company_id
            and r.created_at >= since
            and (employee_id is None or r.employee_id == employee_id)
        ]
        return sorted(found, key=lambda r: r.created_at, reverse=True)

    async def change_delivery(self, change: DeliveryChange) -> uuid.UUID | None:
        v = await self.find(change.verification_id)
        if v is None or not change.applies_to(DeliveryStatus(v.delivery_status)):
            return None
        v.delivery_status = change.to.value
        v.delivery_reason = change.reason
        v.delivery_reason_code = change.reason_code
        v.delivery_updated_at = change.at
        return v.employee_id

    def conflict(self) -> PendingVerificationTaken | None:
        live = [v.employee_id for v in (*self.stored, *self.pending) if v.state == VerificationState.PENDING]
        return PendingVerificationTaken() if len(live) != len(set(live)) else None


@dataclass
class FakeMessages:
    handled: set[str] = field(default_factory=set)
    published: list[Envelope[EventPayload]] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)
    staged: list[Envelope[EventPayload]] = field(default_factory=list)
    # Each published message's expiry (its TTL), by envelope id.
    expiry: dict[str, datetime | None] = field(default_factory=dict)

    async def claim(self, message_id: str) -> bool:
        if message_id in self.handled or message_id in self.claimed:
            return False
        self.claimed.add(message_id)
        return True

    def publish(self, envelope: Envelope[EventPayload], *, expires_at: datetime | None = None) -> None:
        self.staged.append(envelope)
        self.expiry[envelope.id] = expires_at


@dataclass
class FakeStaff:
    """The administrator's view of the employees, over the same people and orders as the rest."""

    employees: FakeEmployees
    orders: FakeOrders
    ended_sessions: dict[uuid.UUID, int] = field(default_factory=dict)
    sessions: dict[uuid.UUID, int] = field(default_factory=dict)  # open sessions per employee
    # A number another request commits between the friendly check and the write.
    taken_at_write: set[str] = field(default_factory=set)
    # What a rollback puts back: the database would not have kept an uncommitted number.
    written: list[tuple[Subscription, str]] = field(default_factory=list)

    async def of_company(
        self, company_id: uuid.UUID, *, after: StaffPosition | None, limit: int
    ) -> Sequence[Employee]:
        people = sorted(
            (e for e in self.employees.people.values() if e.company_id == company_id),
            key=lambda e: (e.name, e.id),
        )
        if after is not None:
            people = [e for e in people if (e.name, e.id) > (after.name, after.employee_id)]
        return people[:limit]

    async def in_company(
        self, company_id: uuid.UUID, employee_id: uuid.UUID, *, lock: bool = False
    ) -> Employee | None:
        employee = self.employees.people.get(employee_id)
        return employee if employee is not None and employee.company_id == company_id else None

    async def holder_of(self, msisdn: str) -> uuid.UUID | None:
        return next(
            (
                e.id
                for e in self.employees.people.values()
                if e.subscription is not None and e.subscription.msisdn == msisdn
            ),
            None,
        )

    async def change_msisdn(self, subscription: Subscription, msisdn: str) -> None:
        if msisdn in self.taken_at_write:
            raise MsisdnTaken()
        self.written.append((subscription, subscription.msisdn))
        subscription.msisdn = msisdn

    async def open_orders_on(self, subscription_id: uuid.UUID) -> Sequence[uuid.UUID]:
        return [
            o.id
            for o in self.orders.stored
            if o.subscription_id == subscription_id and o.status in OPEN_STATUSES
        ]

    async def end_sessions(self, employee_id: uuid.UUID) -> int:
        count = self.sessions.pop(employee_id, 0)
        self.ended_sessions[employee_id] = self.ended_sessions.get(employee_id, 0) + count
        return count


@dataclass
class FakeAuditLog:
    employees: FakeEmployees
    stored: list[AuditEntry] = field(default_factory=list)
    pending: list[AuditEntry] = field(default_factory=list)

    def add(self, entry: AuditEntry) -> None:
        self.pending.append(entry)

    async def of_company(
        self, company_id: uuid.UUID, *, before_id: int | None, limit: int
    ) -> Sequence[LoggedChange]:
        entries = sorted(
            (e for e in self.stored if e.company_id == company_id), key=lambda e: e.id, reverse=True
        )
        if before_id is not None:
            entries = [e for e in entries if e.id < before_id]
        people = self.employees.people
        return [
            LoggedChange(
                entry=e,
                actor_name=people[e.actor_employee_id].name,
                subject_name=people[e.subject_employee_id].name,
            )
            for e in entries[:limit]
        ]

    def commit(self) -> None:
        for entry in self.pending:
            entry.id = len(self.stored) + 1
            self.stored.append(entry)
        self.pending.clear()


class DuplicateKey(Exception):
    """What the database's primary key would raise (an IntegrityError) at commit."""


@dataclass
class FakeDeductions:
    """The deductions' read model: lines by id, committed or waiting for the commit."""

    employees: FakeEmployees
    stored: dict[uuid.UUID, Deduction] = field(default_factory=dict)
    pending: dict[uuid.UUID, Deduction] = field(default_factory=dict)
    # Lines added again: the database's primary key refuses them at commit.
    duplicates: list[uuid.UUID] = field(default_factory=list)

    async def get(self, line_id: uuid.UUID) -> Deduction | None:
        return self.stored.get(line_id) or self.pending.get(line_id)

    def add(self, line: Deduction) -> None:
        if line.line_id in self.stored or line.line_id in self.pending:
            self.duplicates.append(line.line_id)
        self.pending[line.line_id] = line

    async def of_employee(self, employee_id: uuid.UUID) -> Sequence[Deduction]:
        return [d for d in self.stored.values() if d.employee_id == employee_id]

    async def of_company(self, company_id: uuid.UUID, period: str) -> Sequence[Deduction]:
        return [d for d in self.stored.values() if d.company_id == company_id and d.period == period]

    async def names_in(self, company_id: uuid.UUID, employee_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        people = self.employees.people
        return {i: people[i].name for i in employee_ids if i in people and people[i].company_id == company_id}


@dataclass
class FakeUnitOfWork:
    catalog: Catalog
    employees: FakeEmployees = field(default_factory=FakeEmployees)
    policies: FakePolicies = field(default_factory=FakePolicies)
    subscriptions: FakeSubscriptions = field(default_factory=FakeSubscriptions)
    messages: FakeMessages = field(default_factory=FakeMessages)
    verifications: FakeVerifications = field(default_factory=FakeVerifications)
    before_commit: Callable[[FakeUnitOfWork], None] | None = None
    commits: int = 0
    reads_ended: int = 0
    products: FakeProducts = field(init=False)
    orders: FakeOrders = field(init=False)
    staff: FakeStaff = field(init=False)
    audit_log: FakeAuditLog = field(init=False)
    deductions: FakeDeductions = field(init=False)

    def __post_init__(self) -> None:
        self.products = FakeProducts(self.catalog)
        self.orders = FakeOrders(self.catalog)
        self.staff = FakeStaff(self.employees, self.orders)
        self.audit_log = FakeAuditLog(self.employees)
        self.deductions = FakeDeductions(self.employees)

    def add_employee(self, employee: Employee, policy: PolicyDocument | None = None) -> None:
        self.employees.people[employee.id] = employee
        if employee.subscription is not None:
            self.subscriptions.by_id[employee.subscription.id] = employee.subscription
        if policy is not None:
            self.policies.by_company[employee.company_id] = policy

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.rollback()  # whatever was left uncommitted

    async def commit(self) -> None:
        if self.before_commit is not None:
            hook, self.before_commit = self.before_commit, None
            hook(self)
        for order in self.orders.pending:
            if conflict := self.orders.conflict(order):
                await self.rollback()
                raise conflict
        if taken := self.verifications.conflict():
            await self.rollback()
            raise taken
        if self.deductions.duplicates:
            await self.rollback()
            raise DuplicateKey("deductions.line_id")
        self.orders.stored.extend(self.orders.pending)
        self.verifications.stored.extend(self.verifications.pending)
        self.verifications.refusals.extend(self.verifications.pending_refusals)
        self.verifications.pending.clear()
        self.verifications.pending_refusals.clear()
        self.audit_log.commit()
        self.deductions.stored.update(self.deductions.pending)
        self.deductions.pending.clear()
        self.policies.by_company.update(self.policies.pending)
        self.policies.pending.clear()
        self.staff.written.clear()
        self.messages.published.extend(self.messages.staged)
        self.messages.handled |= self.messages.claimed
        self.orders.pending.clear()
        self.messages.staged.clear()
        self.messages.claimed.clear()
        self.commits += 1

    async def end_reads(self) -> None:
        self.reads_ended += 1

    async def rollback(self) -> None:
        self.verifications.pending.clear()
        self.verifications.pending_refusals.clear()
        self.orders.pending.clear()
        self.audit_log.pending.clear()
        self.deductions.pending.clear()
        self.deductions.duplicates.clear()
        self.policies.pending.clear()
        for subscription, msisdn in reversed(self.staff.written):
            subscription.msisdn = msisdn
        self.staff.written.clear()
        self.messages.staged.clear()
        self.messages.claimed.clear()


def _checked(uow: FakeUnitOfWork) -> UnitOfWork:
    return uow  # mypy: the fake is a UnitOfWork


def _checked_admin(uow: FakeUnitOfWork) -> AdminUnitOfWork:
    return uow  # mypy: the fake is an AdminUnitOfWork too


def _checked_payroll(uow: FakeUnitOfWork) -> PayrollUnitOfWork:
    return uow  # mypy: and a PayrollUnitOfWork


def _checked_policy(uow: FakeUnitOfWork) -> PolicyUnitOfWork:
    return uow  # mypy: and a PolicyUnitOfWork
