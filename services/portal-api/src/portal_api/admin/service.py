"""The administrator's use cases: list the company's employees, change one (number, self-service,
verification lock) with its audit entry in the same transaction, and read the audit log. Each
takes a unit of work and raises DomainError with a stable code; none knows HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from mport_shared.logging import get_logger

from portal_api.admin.domain import (
    AuditAction,
    ChangeEmployee,
    EmployeeState,
    apply_change,
    changed_fields,
    normalize_msisdn,
)
from portal_api.catalog.products import Catalog
from portal_api.errors import DomainError, ErrorCode, NotSignedIn
from portal_api.models import AuditEntry, Employee, Subscription

if TYPE_CHECKING:  # unit_of_work imports this package's repositories
    from portal_api.unit_of_work import Employees, Products

log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StaffPosition:
    """Where a page of the employee list ends: the list is by (name, id)."""

    name: str
    employee_id: uuid.UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedChange:
    """An audit entry with the names of who made it and whom it changed."""

    entry: AuditEntry
    actor_name: str
    subject_name: str


class Staff(Protocol):
    """A company's employees as its administrator sees them."""

    async def of_company(
        self, company_id: uuid.UUID, *, after: StaffPosition | None, limit: int
    ) -> Sequence[Employee]:
        """By (name, id), those after `after`, at most `limit`, each with their subscription."""
        ...

    async def in_company(
        self, company_id: uuid.UUID, employee_id: uuid.UUID, *, lock: bool = False
    ) -> Employee | None:
        """The employee with their subscription, if they are the company's; another company's
        is indistinguishable from none. `lock`: their row is locked until the transaction ends,
        and read as it is once locked (a code confirmed meanwhile is seen, not overwritten)."""
        ...

    async def holder_of(self, msisdn: str) -> uuid.UUID | None:
        """The employee whose subscription has this number, of any company."""
        ...

    async def change_msisdn(self, subscription: Subscription, msisdn: str) -> None:
        """Write the subscription's new number now (so the row is locked for the rest of the
        transaction); raises MsisdnTaken if the database finds it taken."""
        ...

    async def open_orders_on(self, subscription_id: uuid.UUID) -> Sequence[uuid.UUID]:
        """The subscription's orders still received or with the carrier."""
        ...

    async def end_sessions(self, employee_id: uuid.UUID) -> int:
        """End every session of the employee in this transaction; how many there were."""
        ...


class AuditLog(Protocol):
    def add(self, entry: AuditEntry) -> None: ...

    async def of_company(
        self, company_id: uuid.UUID, *, before_id: int | None, limit: int
    ) -> Sequence[LoggedChange]:
        """Newest first (by id), those older than `before_id`, at most `limit`."""
        ...


class AdminUnitOfWork(Protocol):
    """What the administrator's use cases need of a unit of work (unit_of_work.SqlAlchemyUnitOfWork
    has it all; tests pass fakes.FakeUnitOfWork)."""

    @property
    def employees(self) -> Employees: ...
    @property
    def products(self) -> Products: ...
    @property
    def staff(self) -> Staff: ...
    @property
    def audit_log(self) -> AuditLog: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def end_reads(self) -> None:
        """End the transaction that reading began, keeping what was read: called before waiting
        on another service, so that no database connection is held meanwhile."""
        ...


class MsisdnTaken(Exception):
    """The database refused the number: another subscription has it (a change committed first)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffMember:
    """An employee as the administrator's list and page show them."""

    employee: Employee
    plan_code: str | None
    plan_name: str | None

    @property
    def state(self) -> EmployeeState:
        return EmployeeState.of(self.employee)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeOutcome:
    member: StaffMember
    entry: AuditEntry | None  # None when nothing changed
    sessions_ended: int


async def administrator(uow: AdminUnitOfWork, actor_id: uuid.UUID) -> Employee:
    """The signed-in employee, if they are an administrator (of their own company only)."""
    actor = await uow.employees.get(actor_id)
    if actor is None:  # the session outlived the employee's record
        raise NotSignedIn()
    if not actor.is_admin:
        raise DomainError(
            ErrorCode.NOT_AN_ADMINISTRATOR, "Only the company's mPort administrators may do this."
        )
    return actor


def _member(employee: Employee, catalog: Catalog) -> StaffMember:
    subscription = employee.subscription
    plan = catalog.get(subscription.plan_code) if subscription is not None else None
    return StaffMember(
        employee=employee,
        plan_code=subscription.plan_code if subscription is not None else None,
        plan_name=plan.name if plan is not None else None,
    )


def _not_found() -> DomainError:
    return DomainError(ErrorCode.EMPLOYEE_NOT_FOUND, "There is no such employee in your company.")


async def list_staff(
    uow: AdminUnitOfWork, actor_id: uuid.UUID, *, after: StaffPosition | None, limit: int
) -> tuple[Employee, list[StaffMember]]:
    """The administrator and a page of their company's employees (by name, then id)."""
    actor = await administrator(uow, actor_id)
    people = await uow.staff.of_company(actor.company_id, after=after, limit=limit)
    catalog = await uow.products.catalog()
    return actor, [_member(e, catalog) for e in people]


async def staff_member(uow: AdminUnitOfWork, actor_id: uuid.UUID, employee_id: uuid.UUID) -> StaffMember:
    actor = await administrator(uow, actor_id)
    employee = await uow.staff.in_company(actor.company_id, employee_id)
    if employee is None:
        raise _not_found()
    return _member(employee, await uow.products.catalog())


async def change_employee(
    uow: AdminUnitOfWork,
    *,
    actor_id: uuid.UUID,
    employee_id: uuid.UUID,
    change: ChangeEmployee,
    clock: Callable[[], datetime] = utc_now,
) -> ChangeOutcome:
    """Apply an administrator's change to one of their company's employees and record it in the
    audit log, in one transaction (a change without its entry, or an entry without its change,
    never commits). A change that changes nothing commits nothing and logs nothing.

    A corrected number resets the verification (phone_verified_at cleared, self-service off until
    the employee confirms the new number by SMS) and ends the employee's sessions, so no browser
    goes on ordering for the old number. It is refused while orders on the old number are open:
    the carrier provisions them on that number, and the subscription would then say otherwise.
    The subscription's row is written before that check, so an order committing meanwhile is
    either seen by the check or waits for this change (PostgreSQL's foreign-key lock)."""
    msisdn = normalize_msisdn(change.msisdn) if change.msisdn is not None else None
    async with uow:
        actor = await administrator(uow, actor_id)
        # Locked: the verification use cases lock the employee's row too, so a code confirmed at
        # the same moment comes wholly before or after this change (never active while not allowed).
        employee = await uow.staff.in_company(actor.company_id, employee_id, lock=True)
        if employee is None:
            raise _not_found()
        catalog = await uow.products.catalog()
        before = EmployeeState.of(employee)
        after = apply_change(before, change, msisdn=msisdn)
        old, new = changed_fields(before, after)
        if not old:
            return ChangeOutcome(member=_member(employee, catalog), entry=None, sessions_ended=0)
        sessions_ended = 0
        if after.msisdn != before.msisdn:
            sessions_ended = await _correct_number(uow, employee, after.msisdn)
        employee.self_service_allowed = after.self_service_allowed
        employee.self_service_active = after.self_service_active
        employee.phone_verified_at = after.phone_verified_at
        employee.verification_failures = after.verification_failures
        entry = AuditEntry(
            company_id=actor.company_id,
            actor_employee_id=actor.id,
            subject_employee_id=employee.id,
            action=AuditAction.EMPLOYEE_UPDATED.value,
            before=old,
            after=new,
            at=clock(),
        )
        uow.audit_log.add(entry)
        member = _member(employee, catalog)
        await uow.commit()
        log.info(
            "employee changed by administrator",
            actor_employee_id=str(actor.id),
            subject_employee_id=str(employee.id),
            fields=sorted(new),
            sessions_ended=sessions_ended,
        )
        return ChangeOutcome(member=member, entry=entry, sessions_ended=sessions_ended)


async def _correct_number(uow: AdminUnitOfWork, employee: Employee, msisdn: str | None) -> int:
    subscription = employee.subscription
    if subscription is None or msisdn is None:
        raise DomainError(
            ErrorCode.EMPLOYEE_HAS_NO_SUBSCRIPTION,
            "The employee has no subscription whose number to correct.",
        )
    holder = await uow.staff.holder_of(msisdn)
    if holder is not None and holder != employee.id:
        raise _taken()
    try:
        await uow.staff.change_msisdn(subscription, msisdn)
    except MsisdnTaken:
        raise _taken() from None
    if open_orders := await uow.staff.open_orders_on(subscription.id):
        raise DomainError(
            ErrorCode.OPEN_ORDERS_ON_NUMBER,
            f"{len(open_orders)} order(s) on the current number are still with the carrier: correct "
            "the number once they have completed or failed.",
        )
    return await uow.staff.end_sessions(employee.id)


def _taken() -> DomainError:
    # Without the number: a refusal's detail is logged, and a number is personal data.
    return DomainError(ErrorCode.MSISDN_TAKEN, "Another employee's subscription has this number.")


async def audit_log_page(
    uow: AdminUnitOfWork, actor_id: uuid.UUID, *, before_id: int | None, limit: int
) -> tuple[Employee, list[LoggedChange]]:
    """The administrator and a page of their company's audit log, newest first."""
    actor = await administrator(uow, actor_id)
    return actor, list(await uow.audit_log.of_company(actor.company_id, before_id=before_id, limit=limit))
