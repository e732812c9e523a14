"""The administrator's rules about an employee, without I/O: what a change to the number, the
self-service switch or the verification lock does to the employee, and what the audit log records."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from portal_api.errors import DomainError, ErrorCode
from portal_api.models import Employee
from portal_api.verification_rules import is_locked

# E.164: at most 15 digits with the country code. Fewer than 8 is no subscriber number anywhere
# the portal's carrier serves; 8 digits alone is a Norwegian number without its prefix.
_MIN_DIGITS = 8
_MAX_DIGITS = 15
NORWAY_PREFIX = "47"
_SEPARATORS = re.compile(r"[ \u00a0.\-()]")


class AuditAction(StrEnum):
    """What an audit entry records; stable, like the problem codes (clients may switch on it)."""

    EMPLOYEE_UPDATED = "employee.updated"
    PAYROLL_PERIOD_CLOSED = "payroll.period_closed"  # the subject is the administrator who closed it
    POLICY_UPDATED = "policy.updated"  # the company's mobile policy (admin.policy)


def normalize_msisdn(raw: str) -> str:
    """The number as the portal stores it, E.164 digits without "+" (4791234567): spaces, dots,
    dashes and brackets go, "+" or "00" before the country code goes, and 8 digits without a
    country code are Norwegian. DomainError(admin.invalid-msisdn) for anything else."""
    text = _SEPARATORS.sub("", raw.strip())
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    if not text.isascii() or not text.isdigit():
        raise DomainError(
            ErrorCode.INVALID_MSISDN, "A phone number has digits only (and + before the country code)."
        )
    if len(text) == _MIN_DIGITS and not text.startswith(NORWAY_PREFIX):
        text = NORWAY_PREFIX + text
    if not _MIN_DIGITS < len(text) <= _MAX_DIGITS or text.startswith("0"):
        raise DomainError(
            ErrorCode.INVALID_MSISDN,
            f"A phone number is {_MIN_DIGITS + 1} to {_MAX_DIGITS} digits with the country code "
            f"(e.g. 4791234567), or {_MIN_DIGITS} digits of a Norwegian number.",
        )
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeEmployee:
    """An administrator's change (PATCH /api/v1/admin/employees/{id}); None leaves a field as it is."""

    msisdn: str | None = None  # as typed: normalize_msisdn cleans it
    self_service_allowed: bool | None = None
    unlock: bool = False  # sets the wrong codes in a row back to 0

    @property
    def is_empty(self) -> bool:
        return self.msisdn is None and self.self_service_allowed is None and not self.unlock


@dataclass(frozen=True, slots=True, kw_only=True)
class EmployeeState:
    """What the administrator's changes read and write of an employee."""

    msisdn: str | None  # their subscription's; None without one
    self_service_allowed: bool
    self_service_active: bool
    phone_verified_at: datetime | None
    verification_failures: int

    @classmethod
    def of(cls, employee: Employee) -> EmployeeState:
        return cls(
            msisdn=employee.subscription.msisdn if employee.subscription is not None else None,
            self_service_allowed=employee.self_service_allowed,
            self_service_active=employee.self_service_active,
            phone_verified_at=employee.phone_verified_at,
            verification_failures=employee.verification_failures,
        )

    @property
    def locked(self) -> bool:
        return is_locked(self.verification_failures)


def apply_change(state: EmployeeState, change: ChangeEmployee, *, msisdn: str | None = None) -> EmployeeState:
    """The employee after the change (`msisdn`: the change's number, normalized).

    - A new number is not confirmed: phone_verified_at is cleared and self-service is off until
      the employee confirms it by SMS. The same number again changes nothing.
    - Self-service off: not active, whatever was confirmed. On: active once the number is
      confirmed (at once if it is).
    - Unlock: the wrong codes in a row go back to 0.
    Active always implies allowed and a confirmed number."""
    after = state
    if msisdn is not None and msisdn != state.msisdn:
        after = replace(after, msisdn=msisdn, phone_verified_at=None, self_service_active=False)
    if change.self_service_allowed is not None:
        after = replace(
            after,
            self_service_allowed=change.self_service_allowed,
            self_service_active=change.self_service_allowed and after.phone_verified_at is not None,
        )
    if change.unlock:
        after = replace(after, verification_failures=0)
    return after


def changed_fields(before: EmployeeState, after: EmployeeState) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields that differ, before and after, as JSON values (the audit log's `before`/`after`)."""
    old, new = _as_json(before), _as_json(after)
    names = [name for name in old if old[name] != new[name]]
    return {name: old[name] for name in names}, {name: new[name] for name in names}


def _as_json(state: EmployeeState) -> dict[str, Any]:
    return {
        "msisdn": state.msisdn,
        "self_service_allowed": state.self_service_allowed,
        "self_service_active": state.self_service_active,
        "phone_verified_at": state.phone_verified_at.isoformat() if state.phone_verified_at else None,
        "verification_failures": state.verification_failures,
    }
