"""Phone verification rules that need no I/O: the one-time code and its keyed hash, what may be
asked for (check_request) and what a typed code does (judge_code), after NIST SP 800-63B §5.1.3
and OWASP ASVS (V2.7 in 4.0, V6.5-6.6 in 5.0).

A code is 6 digits from the CSPRNG (`secrets`), stored only as HMAC-SHA256(server secret,
verification id + code), so it is bound to the request (its id) as well as to the employee and
the number the row names; compared with hmac.compare_digest."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from mport_shared.events import VerificationCodeSent, VerificationDelivered, VerificationDeliveryFailed

from portal_api.errors import DomainError, ErrorCode
from portal_api.verification_rules import MAX_CONSECUTIVE_VERIFICATION_FAILURES

DeliveryEvent = VerificationCodeSent | VerificationDelivered | VerificationDeliveryFailed

CODE_DIGITS = 6


class VerificationState(StrEnum):
    PENDING = "pending"  # sent (or on its way), may be confirmed
    CONFIRMED = "confirmed"  # the right code came: used up
    EXPIRED = "expired"  # its time ran out before the right code came
    REPLACED = "replaced"  # a newer code for the employee killed it
    DEAD = "dead"  # too many wrong tries


class DeliveryStatus(StrEnum):
    """How far the SMS got, as the sms-worker reports it (never backwards: DELIVERY_RANK)."""

    REQUESTED = "requested"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


# Delivered and failed are both final: whichever came first stays (a gateway that reported a
# failure and then a delivery is not believed twice; the employee can ask for a new code).
DELIVERY_RANK = {
    DeliveryStatus.REQUESTED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.FAILED: 2,
}


class RefusalReason(StrEnum):
    """Why a code was not sent at all, kept per refusal for the administrator (SMS pumping)."""

    COUNTRY_NOT_ALLOWED = "country_not_allowed"
    BUDGET_SPENT = "budget_spent"


@dataclass(frozen=True, slots=True)
class SendLimit:
    codes: int
    window: timedelta

    def words(self) -> str:
        minutes = int(self.window.total_seconds() // 60)
        if minutes % (24 * 60) == 0:
            days = minutes // (24 * 60)
            return f"{self.codes} per day" if days == 1 else f"{self.codes} per {days} days"
        return f"{self.codes} per {minutes} minutes"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeRules:
    """The limits in force (settings give the TTL, the countries and the company budget)."""

    ttl: timedelta = timedelta(minutes=10)
    max_tries_per_code: int = 5
    # Wrong codes in a row over all of the employee's codes before only the administrator can
    # unlock (employees.verification_failures).
    max_failures: int = MAX_CONSECUTIVE_VERIFICATION_FAILURES
    per_number: tuple[SendLimit, ...] = (
        SendLimit(3, timedelta(minutes=15)),
        SendLimit(10, timedelta(days=1)),
    )
    allowed_prefixes: tuple[str, ...] = ("47",)
    daily_budget_per_company: int = 200

    @property
    def longest_window(self) -> timedelta:
        return max((limit.window for limit in self.per_number), default=timedelta(0))


# ---- The code -----------------------------------------------------------------------------------


def new_code(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """Six digits, each equally likely (leading zeros kept)."""
    return f"{randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hmac(secret: bytes, verification_id: uuid.UUID, code: str) -> bytes:
    """What is stored instead of the code. Keyed, so a copy of the table alone cannot be brute
    forced over the million codes; the id binds it to this one request."""
    return hmac.new(secret, verification_id.bytes + code.encode("ascii"), hashlib.sha256).digest()


def code_matches(secret: bytes, verification_id: uuid.UUID, typed: str, stored: bytes) -> bool:
    """In constant time (hmac.compare_digest), whatever was typed."""
    if not (len(typed) == CODE_DIGITS and typed.isascii() and typed.isdigit()):
        # Compare anyway, so a malformed try costs as long as a wrong one.
        typed = "0" * CODE_DIGITS + "x"
    return hmac.compare_digest(code_hmac(secret, verification_id, typed), stored)


# ---- Asking for a code --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Requester:
    """What check_request needs to know of the employee."""

    msisdn: str | None  # the subscription's number: the only one a code goes to
    phone_verified_at: datetime | None
    failures: int


def start_of_day(now: datetime) -> datetime:
    """The company budget counts codes made since midnight UTC."""
    moment = now.astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def check_request(
    *,
    requester: Requester,
    sent_to_number: Sequence[datetime],
    company_codes_today: int,
    rules: CodeRules,
    now: datetime,
) -> DomainError | RefusalReason | None:
    """None if a new code may be sent now. Otherwise the refusal; a RefusalReason is a refusal to
    be recorded for the administrator before it is raised (refusal_error gives its words).

    `sent_to_number`: when codes were made for this number within rules.longest_window."""
    if requester.msisdn is None:
        return DomainError(
            ErrorCode.NO_SUBSCRIPTION, "You have no mobile subscription to confirm a number of."
        )
    if requester.failures >= rules.max_failures:
        return locked_error(rules)
    if requester.phone_verified_at is not None:
        return DomainError(
            ErrorCode.VERIFICATION_ALREADY_CONFIRMED,
            "Your phone number is already confirmed; there is nothing to send a code for.",
        )
    if not requester.msisdn.startswith(rules.allowed_prefixes):
        return RefusalReason.COUNTRY_NOT_ALLOWED
    waits = []
    for limit in rules.per_number:
        within = sorted(t for t in sent_to_number if t > now - limit.window)
        if len(within) >= limit.codes:
            # Free again when the oldest code that counts leaves the window.
            waits.append((within[len(within) - limit.codes] + limit.window - now, limit))
    if waits:
        wait, limit = max(waits, key=lambda w: w[0])
        seconds = _seconds(wait)
        return DomainError(
            ErrorCode.VERIFICATION_TOO_MANY_CODES,
            f"Too many codes for this number (at most {limit.words()}). Try again in {seconds} s.",
            retry_after_s=seconds,
        )
    if company_codes_today >= rules.daily_budget_per_company:
        return RefusalReason.BUDGET_SPENT
    return None


def refusal_error(reason: RefusalReason, *, msisdn: str, rules: CodeRules, now: datetime) -> DomainError:
    match reason:
        case RefusalReason.COUNTRY_NOT_ALLOWED:
            return DomainError(
                ErrorCode.SMS_COUNTRY_NOT_ALLOWED,
                f"mPort does not send SMS to numbers in this country (allowed prefixes: "
                f"{', '.join(rules.allowed_prefixes)}). Contact your mPort administrator.",
            )
        case RefusalReason.BUDGET_SPENT:
            seconds = _seconds(start_of_day(now) + timedelta(days=1) - now)
            return DomainError(
                ErrorCode.SMS_BUDGET_SPENT,
                "Your company has sent as many codes today as it may "
                f"({rules.daily_budget_per_company}). Try again tomorrow, "
                "or contact your mPort administrator.",
                retry_after_s=seconds,
            )


def locked_error(rules: CodeRules) -> DomainError:
    return DomainError(
        ErrorCode.VERIFICATION_LOCKED,
        f"Too many wrong codes ({rules.max_failures} in a row): your mPort administrator must unlock "
        "phone verification for you.",
    )


# ---- Typing a code ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeUnderTest:
    """A stored verification as judge_code sees it."""

    id: uuid.UUID
    msisdn: str
    code_hmac: bytes
    state: VerificationState
    attempts: int
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What a typed code does: the verification's new state and tries, the employee's new count
    of failures in a row, whether the number is now confirmed, and the refusal to answer with."""

    state: VerificationState
    attempts: int
    failures: int
    confirmed: bool
    refusal: DomainError | None


def judge_code(
    verification: CodeUnderTest,
    *,
    typed: str,
    current_msisdn: str | None,
    failures: int,
    secret: bytes,
    rules: CodeRules,
    now: datetime,
) -> Verdict:
    """The rules in order: locked employee, number changed, used, replaced, dead, expired; only then
    is the code compared (so a dead or expired code gives no oracle), and a wrong one counts."""

    def refuse(error: DomainError, state: VerificationState | None = None) -> Verdict:
        return Verdict(
            state=state or verification.state,
            attempts=verification.attempts,
            failures=failures,
            confirmed=False,
            refusal=error,
        )

    if failures >= rules.max_failures:
        return refuse(locked_error(rules))
    if current_msisdn != verification.msisdn:
        return refuse(
            DomainError(
                ErrorCode.VERIFICATION_NUMBER_CHANGED,
                "Your phone number has changed since this code was sent: ask for a new code.",
            )
        )
    match verification.state:
        case VerificationState.CONFIRMED:
            return refuse(DomainError(ErrorCode.VERIFICATION_CODE_USED, "This code has been used already."))
        case VerificationState.REPLACED:
            return refuse(
                DomainError(
                    ErrorCode.VERIFICATION_CODE_REPLACED,
                    "A newer code has been sent: use the newest one.",
                )
            )
        case VerificationState.DEAD:
            return refuse(
                DomainError(
                    ErrorCode.VERIFICATION_CODE_DEAD,
                    f"This code was typed wrong {rules.max_tries_per_code} times: ask for a new code.",
                )
            )
        case VerificationState.EXPIRED:
            return refuse(_expired())
        case VerificationState.PENDING:
            pass
    if now >= verification.expires_at:
        return refuse(_expired(), VerificationState.EXPIRED)
    attempts = verification.attempts + 1
    if code_matches(secret, verification.id, typed, verification.code_hmac):
        return Verdict(
            state=VerificationState.CONFIRMED, attempts=attempts, failures=0, confirmed=True, refusal=None
        )
    failures += 1
    tries_left = rules.max_tries_per_code - attempts
    state = VerificationState.PENDING if tries_left > 0 else VerificationState.DEAD
    error: DomainError
    if failures >= rules.max_failures:
        error = locked_error(rules)
    elif tries_left > 0:
        error = DomainError(
            ErrorCode.VERIFICATION_WRONG_CODE,
            f"Wrong code: {tries_left} {'try' if tries_left == 1 else 'tries'} left.",
            tries_left=tries_left,
        )
    else:
        error = DomainError(
            ErrorCode.VERIFICATION_TOO_MANY_TRIES,
            f"Wrong code {rules.max_tries_per_code} times: this code no longer works. Ask for a new code.",
            tries_left=0,
        )
    return Verdict(state=state, attempts=attempts, failures=failures, confirmed=False, refusal=error)


def _expired() -> DomainError:
    return DomainError(ErrorCode.VERIFICATION_CODE_EXPIRED, "This code has expired: ask for a new code.")


# ---- How far the SMS got ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryChange:
    """A delivery report from the sms-worker, as a change the verification takes only from a
    status before it (DELIVERY_RANK): late, repeated or contradicting reports change nothing."""

    verification_id: uuid.UUID
    to: DeliveryStatus
    at: datetime
    reason: str | None = None
    reason_code: str | None = None

    @property
    def allowed_from(self) -> tuple[DeliveryStatus, ...]:
        return tuple(s for s, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[self.to])

    def applies_to(self, current: DeliveryStatus) -> bool:
        return current in self.allowed_from


def delivery_change(event: DeliveryEvent) -> DeliveryChange:
    match event:
        case VerificationCodeSent():
            return DeliveryChange(
                verification_id=event.verification_id, to=DeliveryStatus.SENT, at=event.sent_at
            )
        case VerificationDelivered():
            return DeliveryChange(
                verification_id=event.verification_id, to=DeliveryStatus.DELIVERED, at=event.delivered_at
            )
        case VerificationDeliveryFailed():
            return DeliveryChange(
                verification_id=event.verification_id,
                to=DeliveryStatus.FAILED,
                at=event.failed_at,
                reason=event.reason[:500],
                reason_code=event.reason_code.value,
            )
