"""`make run`'s SQLite: the portal has one database connection, on the event loop
(mport_shared.db.InlineSqlite), and its sessions take turns on it. So a use case that waits on
another service must not hold that connection meanwhile, or every other request waits with it.
Here the payroll-worker stand-in needs the database itself (another request's turn) before it
answers: a use case that held the connection would wait for itself until the pool's timeout."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mport_shared.db import create_engine, migrate, session_factory
from portal_api.payroll.client import ClosedPeriod, ExportFile, PeriodStatus
from portal_api.payroll.domain import ExportFormat
from portal_api.payroll.service import close_period, export_period, payroll_periods
from portal_api.seed import DEMO_COMPANY_ID, INGRID, seed
from portal_api.unit_of_work import SqlUnitsOfWork

pytestmark = pytest.mark.integration


@pytest.fixture
async def units(tmp_path: Path) -> AsyncIterator[SqlUnitsOfWork]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portal-api.db'}"
    await migrate("portal_api:migrations", url)
    engine = create_engine(url, sqlite_inline=True)  # as PortalSettings has it
    try:
        sessions = session_factory(engine)
        await seed(sessions)
        yield SqlUnitsOfWork(sessions)
    finally:
        await engine.dispose()


class PayrollThatNeedsTheDatabase:
    """Answers only after another unit of work has read from the database."""

    def __init__(self, units: SqlUnitsOfWork) -> None:
        self.units = units

    async def _another_request(self) -> None:
        async def read() -> None:
            async with self.units.new() as other:
                assert await other.employees.exists(INGRID.id)

        try:
            await asyncio.wait_for(read(), timeout=5)
        except TimeoutError:
            pytest.fail("the use case held the portal's only connection while the payroll-worker answered")

    async def periods(self, company_id: uuid.UUID) -> list[PeriodStatus]:
        await self._another_request()
        return [PeriodStatus(period="2026-12", status="open")]

    async def close(self, company_id: uuid.UUID, period: str) -> ClosedPeriod:
        await self._another_request()
        return ClosedPeriod(period=period, status="closed")

    async def export(self, company_id: uuid.UUID, period: str, export_format: ExportFormat) -> ExportFile:
        await self._another_request()
        return ExportFile(content=b"{}", media_type="application/json", filename="x.json")


async def test_waiting_on_the_payroll_worker_holds_no_connection(units: SqlUnitsOfWork) -> None:
    payroll = PayrollThatNeedsTheDatabase(units)
    async with units.new() as uow:
        _, periods = await payroll_periods(uow, payroll, INGRID.id)
    assert [p.period for p in periods] == ["2026-12"]
    async with units.new() as uow:
        closed = await close_period(uow, payroll, actor_id=INGRID.id, period="2026-12")
    assert closed.status == "closed"
    async with units.new() as uow:
        exported = await export_period(
            uow, payroll, actor_id=INGRID.id, period="2026-12", export_format=ExportFormat.JSON
        )
    assert exported.content == b"{}"
    # The close was logged, after the payroll-worker answered, in the same unit of work.
    async with units.new() as uow:
        logged = await uow.audit_log.of_company(DEMO_COMPANY_ID, before_id=None, limit=10)
    assert [change.entry.action for change in logged] == ["payroll.period_closed"]


async def test_end_reads_refuses_to_commit_writes(units: SqlUnitsOfWork) -> None:
    async with units.new() as uow:
        employee = await uow.employees.get(INGRID.id)
        assert employee is not None
        employee.name = "Ingrid B."
        with pytest.raises(RuntimeError, match="writes not committed"):
            await uow.end_reads()
