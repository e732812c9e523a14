"""The SQL store does what the domain says: for any sequence of events (the domain property's
scenarios), the lines on a real database are exactly those of the in-memory ledger, each event
and close written through the real use cases. SQLite, one database, a fresh company per example."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mport_shared.db import create_engine, migrate_sync, session_factory
from mport_shared.events import EventPayload, envelop
from payroll_worker.models import DeductionLineRow
from payroll_worker.payroll import Payroll
from sqlalchemy import select

from .conftest import completed, failed
from .fakes import DEFAULT_WAGE_TYPE, Ledger
from .test_domain import Plan, build, order_plans, periods_from_start

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('payroll') / 'payroll-worker.db'}"
    migrate_sync("payroll_worker:migrations", url)
    return url


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    plans=st.lists(order_plans, min_size=1, max_size=8),
    closes=st.lists(st.integers(0, 5), max_size=3),
    data=st.data(),
)
def test_the_database_holds_exactly_the_ledgers_lines(
    database: str, plans: list[Plan], closes: list[int], data: st.DataObject
) -> None:
    company = uuid.uuid4()
    orders, events = build(plans, closes, company_id=company)
    sequence = data.draw(st.permutations(events))
    sequence += data.draw(st.lists(st.sampled_from(events), max_size=2)) if events else []
    ledger = Ledger()
    messages: list[tuple[str, EventPayload | str]] = []
    for kind, index in sequence:
        if kind == "close":
            ledger.close(periods_from_start(index))
            messages.append(("close", periods_from_start(index)))
            continue
        snap, at, _ = orders[index]
        payload: EventPayload = (
            completed(snap, at) if kind == "completed" else failed(snap, at + timedelta(hours=1))
        )
        ledger.completed(payload) if kind == "completed" else ledger.failed_(payload)  # type: ignore[arg-type]
        messages.append((kind, payload))
    stored = asyncio.run(_run(database, company, messages))
    expected = sorted((str(r.line.line_id), r.line.period, r.line.amount_ore) for r in ledger.lines.values())
    assert stored == expected


async def _run(
    url: str, company: uuid.UUID, messages: list[tuple[str, EventPayload | str]]
) -> list[tuple[str, str, int]]:
    engine = create_engine(url)
    payroll = Payroll(
        session_factory(engine),
        default_wage_type=DEFAULT_WAGE_TYPE,
        clock=lambda: datetime(2030, 1, 1, tzinfo=UTC),
    )
    try:
        for kind, payload in messages:
            if kind == "close":
                await payroll.close(company, str(payload))
            elif kind == "completed":
                await payroll.on_order_completed(envelop(payload, source="/test", correlation_id="t"))  # type: ignore[type-var]
            else:
                await payroll.on_order_failed(envelop(payload, source="/test", correlation_id="t"))  # type: ignore[type-var]
        async with payroll.sessions() as session:
            rows = await session.scalars(
                select(DeductionLineRow).where(DeductionLineRow.company_id == str(company))
            )
            return sorted((r.line_id, r.period, r.amount_ore) for r in rows)
    finally:
        await engine.dispose()
