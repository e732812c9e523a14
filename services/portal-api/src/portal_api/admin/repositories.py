"""The SQL behind the administrator's use cases (admin.service.Staff and AuditLog)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, raiseload, selectinload

from portal_api.admin.service import LoggedChange, MsisdnTaken, StaffPosition
from portal_api.auth.sessions import end_sessions_of
from portal_api.models import AuditEntry, Employee, Order, Subscription
from portal_api.orders.domain import OPEN_STATUSES
from portal_api.repositories import note_write


@dataclass(frozen=True, slots=True)
class SqlStaff:
    session: AsyncSession

    async def of_company(
        self, company_id: uuid.UUID, *, after: StaffPosition | None, limit: int
    ) -> Sequence[Employee]:
        # The subscriptions in one more query; their SIM cards and services, which the list does
        # not show, not at all.
        query = (
            select(Employee)
            .where(Employee.company_id == company_id)
            .options(
                selectinload(Employee.subscription).options(
                    raiseload(Subscription.sim_cards), raiseload(Subscription.services)
                )
            )
        )
        if after is not None:
            query = query.where(
                or_(
                    Employee.name > after.name,
                    and_(Employee.name == after.name, Employee.id > after.employee_id),
                )
            )
        query = query.order_by(Employee.name, Employee.id).limit(limit)
        return (await self.session.scalars(query)).all()

    async def in_company(
        self, company_id: uuid.UUID, employee_id: uuid.UUID, *, lock: bool = False
    ) -> Employee | None:
        query = select(Employee).where(Employee.id == employee_id, Employee.company_id == company_id)
        if lock:
            # Only the employee's row (the company is joined in), and read afresh once locked even
            # if the session holds it already (the administrator changing themselves, a page).
            query = query.with_for_update(of=Employee).execution_options(populate_existing=True)
        return await self.session.scalar(query)

    async def holder_of(self, msisdn: str) -> uuid.UUID | None:
        return await self.session.scalar(
            select(Subscription.employee_id).where(Subscription.msisdn == msisdn)
        )

    async def change_msisdn(self, subscription: Subscription, msisdn: str) -> None:
        subscription.msisdn = msisdn
        try:
            # Now, not at commit: the UPDATE locks the row (on PostgreSQL a change to a unique
            # column takes the lock an order's foreign key waits for) before the open-order check.
            await self.session.flush()
        except IntegrityError as error:
            if "msisdn" in str(error.orig):
                raise MsisdnTaken() from error
            raise

    async def open_orders_on(self, subscription_id: uuid.UUID) -> Sequence[uuid.UUID]:
        query = select(Order.id).where(
            Order.subscription_id == subscription_id, Order.status.in_(OPEN_STATUSES)
        )
        return (await self.session.scalars(query.order_by(Order.created_at))).all()

    async def end_sessions(self, employee_id: uuid.UUID) -> int:
        note_write(self.session)
        return await end_sessions_of(self.session, employee_id)


_ACTOR = aliased(Employee, name="actor")
_SUBJECT = aliased(Employee, name="subject")


@dataclass(frozen=True, slots=True)
class SqlAuditLog:
    session: AsyncSession

    def add(self, entry: AuditEntry) -> None:
        self.session.add(entry)

    async def of_company(
        self, company_id: uuid.UUID, *, before_id: int | None, limit: int
    ) -> Sequence[LoggedChange]:
        query = (
            select(AuditEntry, _ACTOR.name, _SUBJECT.name)
            .join(_ACTOR, _ACTOR.id == AuditEntry.actor_employee_id)
            .join(_SUBJECT, _SUBJECT.id == AuditEntry.subject_employee_id)
            .where(AuditEntry.company_id == company_id)
        )
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        rows = await self.session.execute(query.order_by(AuditEntry.id.desc()).limit(limit))
        return [LoggedChange(entry=e, actor_name=actor, subject_name=subject) for e, actor, subject in rows]
