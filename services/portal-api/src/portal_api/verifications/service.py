"""Phone verification's use cases (asking for a code, typing it, a delivery report from the
sms-worker) and the query behind the page. Each takes a unit of work and raises DomainError with a
stable code; none knows HTTP or the broker. The code itself leaves only in the VerificationRequested
event (its outbox row expires with it); it is never logged nor stored but as its HMAC."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mport_shared.events import VerificationRequested, envelop
from mport_shared.logging import get_logger

from portal_api import metrics
from portal_api.errors import DomainError, ErrorCode, NotSignedIn
from portal_api.models import Employee, Verification, VerificationRefusal
from portal_api.unit_of_work import PendingVerificationTaken, UnitOfWork
from portal_api.verifications.domain import (
    CodeRules,
    CodeUnderTest,
    DeliveryEvent,
    DeliveryStatus,
    RefusalReason,
    Requester,
    VerificationState,
    check_request,
    code_hmac,
    delivery_change,
    judge_code,
    new_code,
    refusal_error,
    start_of_day,
)

SOURCE = "/mport/portal-api"
log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeKeeper:
    """What the use cases need besides the unit of work: the HMAC key, the rules, the clock, and
    where codes come from (tests pass their own)."""

    secret: bytes
    rules: CodeRules
    clock: Callable[[], datetime]
    make_code: Callable[[], str] = new_code


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The employee after the right code: what the page and the API answer with."""

    verification: Verification
    self_service_active: bool


def _requester(employee: Employee) -> Requester:
    return Requester(
        msisdn=employee.subscription.msisdn if employee.subscription is not None else None,
        phone_verified_at=employee.phone_verified_at,
        failures=employee.verification_failures,
    )


async def _check(
    uow: UnitOfWork, employee: Employee, keeper: CodeKeeper, now: datetime
) -> DomainError | RefusalReason | None:
    requester = _requester(employee)
    rules = keeper.rules
    sent = (
        await uow.verifications.sent_to(requester.msisdn, since=now - rules.longest_window)
        if requester.msisdn is not None
        else ()
    )
    today = await uow.verifications.made_for_company(employee.company_id, since=start_of_day(now))
    return check_request(
        requester=requester, sent_to_number=sent, company_codes_today=today, rules=rules, now=now
    )


async def request_code(uow: UnitOfWork, *, employee_id: uuid.UUID, keeper: CodeKeeper) -> Verification:
    """A new code for the employee's registered number: stored as its HMAC, with its
    VerificationRequested event expiring with it, in one transaction; the employee's pending code,
    if any, is replaced. The employee's row is locked first, so two requests at once take turns
    (and the one-pending-code index catches what a database without row locks lets through)."""
    async with uow:
        await uow.verifications.lock_employee(employee_id)
        employee = await uow.employees.get(employee_id)
        if employee is None:
            raise NotSignedIn()
        now = keeper.clock()
        verdict = await _check(uow, employee, keeper, now)
        if isinstance(verdict, RefusalReason):
            msisdn = _requester(employee).msisdn
            assert msisdn is not None  # a refusal of a number needs one
            uow.verifications.add_refusal(
                VerificationRefusal(
                    company_id=employee.company_id,
                    employee_id=employee.id,
                    msisdn=msisdn,
                    reason=verdict.value,
                    created_at=now,
                )
            )
            await uow.commit()
            metrics.VERIFICATION_CODES.labels(f"refused_{verdict.value}").inc()
            log.info("verification code refused", employee_id=str(employee_id), reason=verdict.value)
            raise refusal_error(verdict, msisdn=msisdn, rules=keeper.rules, now=now)
        if isinstance(verdict, DomainError):
            raise verdict
        subscription = employee.subscription
        assert subscription is not None  # check_request refuses without one
        await uow.verifications.replace_pending(employee.id)
        code = keeper.make_code()
        verification = Verification(
            id=uuid.uuid4(),
            employee_id=employee.id,
            company_id=employee.company_id,
            msisdn=subscription.msisdn,
            created_at=now,
            expires_at=now + keeper.rules.ttl,
            attempts=0,
            state=VerificationState.PENDING.value,
            delivery_status=DeliveryStatus.REQUESTED.value,
        )
        verification.code_hmac = code_hmac(keeper.secret, verification.id, code)
        uow.verifications.add(verification)
        event = VerificationRequested(
            verification_id=verification.id,
            company_id=employee.company_id,
            employee_id=employee.id,
            msisdn=subscription.msisdn,
            code=code,
            expires_at=verification.expires_at,
        )
        uow.messages.publish(
            envelop(event, source=SOURCE, correlation_id=str(verification.id), subject=str(verification.id)),
            expires_at=verification.expires_at,
        )
        try:
            await uow.commit()
        except PendingVerificationTaken:
            raise DomainError(
                ErrorCode.VERIFICATION_BUSY,
                "Another code was asked for at the same moment; use the one that arrives.",
            ) from None
    metrics.VERIFICATION_CODES.labels("requested").inc()
    log.info(
        "verification code requested", verification_id=str(verification.id), employee_id=str(employee_id)
    )
    return verification


async def confirm_code(
    uow: UnitOfWork, *, employee_id: uuid.UUID, verification_id: uuid.UUID, typed: str, keeper: CodeKeeper
) -> Confirmed:
    """The employee typed a code: the right one confirms the number (and turns self-service on,
    if the administrator allows it); a wrong one counts against the code and the employee, and
    that count is committed before the refusal is raised."""
    async with uow:
        await uow.verifications.lock_employee(employee_id)
        employee = await uow.employees.get(employee_id)
        if employee is None:
            raise NotSignedIn()
        verification = await uow.verifications.get(employee_id=employee_id, verification_id=verification_id)
        if verification is None:
            raise DomainError(ErrorCode.VERIFICATION_NOT_FOUND, f"No verification {verification_id}.")
        now = keeper.clock()
        verdict = judge_code(
            CodeUnderTest(
                id=verification.id,
                msisdn=verification.msisdn,
                code_hmac=verification.code_hmac,
                state=VerificationState(verification.state),
                attempts=verification.attempts,
                expires_at=verification.expires_at,
            ),
            typed=typed,
            current_msisdn=_requester(employee).msisdn,
            failures=employee.verification_failures,
            secret=keeper.secret,
            rules=keeper.rules,
            now=now,
        )
        changed = (
            verdict.state != verification.state
            or verdict.attempts != verification.attempts
            or verdict.failures != employee.verification_failures
        )
        verification.state = verdict.state.value
        verification.attempts = verdict.attempts
        employee.verification_failures = verdict.failures
        if verdict.confirmed:
            verification.confirmed_at = now
            employee.phone_verified_at = now
            employee.self_service_active = employee.self_service_allowed
        if changed or verdict.confirmed:
            await uow.commit()
        active = employee.self_service_active
        refusal = verdict.refusal
        if refusal is not None and refusal.code is ErrorCode.VERIFICATION_TOO_MANY_TRIES:
            refusal = await _with_wait(uow, employee, keeper, refusal)
    outcome = "confirmed" if verdict.confirmed else (refusal.code if refusal else "")
    log.info(
        "verification code typed",
        verification_id=str(verification_id),
        employee_id=str(employee_id),
        outcome=str(outcome),
    )
    if refusal is not None:
        raise refusal
    return Confirmed(verification, active)


async def _with_wait(
    uow: UnitOfWork, employee: Employee, keeper: CodeKeeper, refusal: DomainError
) -> DomainError:
    """The code that just died (too many tries) answers 429 with a Retry-After like every 429:
    when a new code may be asked for (at once, unless the send limits say otherwise)."""
    now = keeper.clock()
    ask = await _check(uow, employee, keeper, now)
    wait = ask.retry_after_s if isinstance(ask, DomainError) and ask.retry_after_s else 1
    return DomainError(refusal.code, refusal.detail, **{**refusal.extensions, "retry_after_s": wait})


async def verification_of(
    uow: UnitOfWork, employee_id: uuid.UUID, verification_id: uuid.UUID
) -> Verification:
    verification = await uow.verifications.get(employee_id=employee_id, verification_id=verification_id)
    if verification is None:
        raise DomainError(ErrorCode.VERIFICATION_NOT_FOUND, f"No verification {verification_id}.")
    return verification


@dataclass(frozen=True, slots=True)
class PageState:
    """What the Bekreft telefonnummer page shows: the latest code, if it may still be typed, and
    whether a new code may be asked for now (or why not, and for how long)."""

    latest: Verification | None
    open_code: Verification | None  # pending and not expired
    refusal: DomainError | None  # what asking for a code now would answer


async def page_state(uow: UnitOfWork, employee: Employee, keeper: CodeKeeper) -> PageState:
    now = keeper.clock()
    latest = await uow.verifications.latest_of(employee.id)
    if latest is not None and latest.msisdn != _requester(employee).msisdn:
        latest = None  # sent to a number the employee no longer has: not theirs to show
    open_code = (
        latest
        if latest is not None and latest.state == VerificationState.PENDING and latest.expires_at > now
        else None
    )
    verdict = await _check(uow, employee, keeper, now)
    refusal: DomainError | None
    if isinstance(verdict, RefusalReason):
        msisdn = _requester(employee).msisdn or ""
        refusal = refusal_error(verdict, msisdn=msisdn, rules=keeper.rules, now=now)
    else:
        refusal = verdict
    return PageState(latest=latest, open_code=open_code, refusal=refusal)


class DeliveryOutcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # late, repeated or contradicting: the status stays
    DUPLICATE = "duplicate"  # this very message was handled before
    UNKNOWN = "unknown_verification"


async def apply_delivery_event(uow: UnitOfWork, *, message_id: str, event: DeliveryEvent) -> DeliveryOutcome:
    """How far the SMS got, once per message, never backwards (domain.DELIVERY_RANK)."""
    async with uow:
        if not await uow.messages.claim(message_id):
            return DeliveryOutcome.DUPLICATE
        change = delivery_change(event)
        employee_id = await uow.verifications.change_delivery(change)
        if employee_id is None:
            if await uow.verifications.find(change.verification_id) is None:
                return DeliveryOutcome.UNKNOWN  # rolled back: the message is not recorded
            await uow.commit()
            return DeliveryOutcome.UNCHANGED
        await uow.commit()
    log.info(
        "verification delivery changed", verification_id=str(change.verification_id), status=change.to.value
    )
    return DeliveryOutcome.APPLIED
