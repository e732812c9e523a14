"""The SQL behind the deductions' read model (payroll.service.Deductions)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal_api.models import Deduction, Employee


@dataclass(frozen=True, slots=True)
class SqlDeductions:
    session: AsyncSession

    async def get(self, line_id: uuid.UUID) -> Deduction | None:
        return await self.session.get(Deduction, line_id)

    def add(self, line: Deduction) -> None:
        self.session.add(line)

    async def of_employee(self, employee_id: uuid.UUID) -> Sequence[Deduction]:
        query = select(Deduction).where(Deduction.employee_id == employee_id)
        return (await self.session.scalars(query.order_by(Deduction.period, Deduction.recorded_at))).all()

    async def of_company(self, company_id: uuid.UUID, period: str) -> Sequence[Deduction]:
        query = select(Deduction).where(Deduction.company_id == company_id, Deduction.period == period)
        return (await self.session.scalars(query.order_by(Deduction.recorded_at))).all()

    async def names_in(self, company_id: uuid.UUID, employee_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not employee_ids:
            return {}
        rows = await self.session.execute(
            select(Employee.id, Employee.name).where(
                Employee.company_id == company_id, Employee.id.in_(employee_ids)
            )
        )
        return {employee_id: name for employee_id, name in rows}
