"""The hook for the administrator's view of SMS that were refused (a country prefix not allowed,
the company's daily budget spent). Those refusals are the verifications package's data; until it
is wired here the employee page shows the section with none."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsRefusal:
    at: datetime
    reason_code: str  # e.g. a VerificationFailureCode ("not_allowed") or the budget's own code
    reason: str  # in words for the administrator


class SmsRefusals(Protocol):
    async def of_employee(self, company_id: uuid.UUID, employee_id: uuid.UUID) -> list[SmsRefusal]:
        """The employee's refused SMS, newest first (the last day's, or the last few)."""
        ...


class NoSmsRefusals:
    """Until the verifications package answers (the integrator sets app.state.sms_refusals)."""

    async def of_employee(self, company_id: uuid.UUID, employee_id: uuid.UUID) -> list[SmsRefusal]:
        return []
