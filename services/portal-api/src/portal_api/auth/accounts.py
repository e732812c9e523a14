"""Which employee a work account signs in: bound by `(iss, sub)`, matched by verified e-mail once.

The first sign-in of an account finds the employee by the e-mail the provider vouches for and
binds the account to them (`WorkAccount`). Every later sign-in finds the employee by that binding
alone: the account's e-mail may change (even to another employee's address) without moving it.
An employee already bound to another account at the same provider is not bound again, so an
account that later claims someone's address cannot take their place."""

from __future__ import annotations

from datetime import UTC, datetime

from mport_shared.logging import get_logger
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from portal_api.auth.refusals import SignInRefused
from portal_api.models import Employee, WorkAccount

log = get_logger(__name__)


async def bound_employee(db: AsyncSession, *, issuer: str, subject: str) -> Employee | None:
    """The employee this account is bound to (its last sign-in noted), or None if it is not bound."""
    account = await db.get(WorkAccount, (issuer, subject))
    if account is None:
        return None
    account.last_sign_in_at = datetime.now(UTC)
    employee = await db.get(Employee, account.employee_id)
    await db.commit()
    return employee


async def bind_by_email(db: AsyncSession, *, issuer: str, subject: str, email: str) -> Employee:
    """Bind the account to the employee with this (verified) e-mail; SignInRefused if there is no
    such employee or they are bound to another account at this issuer already."""
    employee = await db.scalar(select(Employee).where(func.lower(Employee.email) == email))
    if employee is None:
        raise SignInRefused("unknown_user", email=email)
    other = await db.scalar(
        select(WorkAccount).where(WorkAccount.employee_id == employee.id, WorkAccount.issuer == issuer)
    )
    if other is not None:
        raise _taken(employee, email, other.subject, subject)
    now = datetime.now(UTC)
    db.add(
        WorkAccount(
            issuer=issuer,
            subject=subject,
            employee_id=employee.id,
            bound_email=email,
            bound_at=now,
            last_sign_in_at=now,
        )
    )
    try:
        await db.commit()
    except IntegrityError:
        # Another sign-in bound at the same moment: this very account (fine), or another one to
        # this employee (refused, as above).
        await db.rollback()
        winner = await db.get(WorkAccount, (issuer, subject))
        if winner is None or winner.employee_id != employee.id:
            raise _taken(employee, email, "(bound concurrently)", subject) from None
        return employee
    log.info("work account bound to employee", employee_id=str(employee.id), issuer=issuer)
    return employee


def _taken(employee: Employee, email: str, bound_subject: str, subject: str) -> SignInRefused:
    return SignInRefused(
        "account_taken",
        email=email,
        log_detail=f"employee {employee.id} is bound to sub {bound_subject!r} at this issuer; "
        f"sub {subject!r} claims the same e-mail",
    )
