"""The administrator's view of SMS that were refused (a country prefix not allowed, the company's
daily budget spent): the employee page's section **Avviste SMS-er** shows what `sms_refusals_of`
returns, read from the verifications package's refusals table through the request's unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portal_api.unit_of_work import UnitOfWork

# How far back the employee page looks: long enough to see an attack and its end.
SHOWN_FOR = timedelta(days=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class SmsRefusal:
    at: datetime
    reason_code: str  # a verifications.domain.RefusalReason: country_not_allowed, budget_spent
    msisdn: str


async def sms_refusals_of(
    uow: UnitOfWork, *, company_id: uuid.UUID, employee_id: uuid.UUID, now: datetime | None = None
) -> list[SmsRefusal]:
    """The employee's refused SMS of the last 30 days, newest first, for this company only."""
    since = (now or datetime.now(UTC)) - SHOWN_FOR
    rows = await uow.verifications.refusals_of(company_id, since=since, employee_id=employee_id)
    return [SmsRefusal(at=row.created_at, reason_code=row.reason, msisdn=row.msisdn) for row in rows]
