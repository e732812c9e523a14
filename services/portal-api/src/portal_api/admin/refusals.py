"""The hook for the administrator's view of SMS that were refused (a country prefix not allowed,
the company's daily budget spent): the employee page's section **Avviste SMS-er** shows what
`sms_refusals_of` returns. Those refusals are the verifications package's data (its refusals
table); until that is wired here the section shows none."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from portal_api.admin.service import AdminUnitOfWork


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsRefusal:
    at: datetime
    reason_code: str  # the verifications package's own code, e.g. country_not_allowed, budget_spent
    reason: str  # in words for the administrator


async def sms_refusals_of(
    uow: AdminUnitOfWork, *, company_id: uuid.UUID, employee_id: uuid.UUID
) -> list[SmsRefusal]:
    """The employee's refused SMS, newest first (at most the last few days'), in the request's
    unit of work. To wire: read them through the unit of work's verifications repository, for
    this company and employee only, and map each row to an SmsRefusal."""
    del uow, company_id, employee_id  # nothing to read until the verifications package is wired
    return []
