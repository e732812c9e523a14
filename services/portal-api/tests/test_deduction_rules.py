"""The deductions' rules through the use cases, on a unit of work in memory (tests/fakes.py) and a
fake payroll-worker: a line is recorded once, sums per period (reversals subtract), Oslo's months,
and the close and export always for the administrator's own company, logged only when done. The
same on PostgreSQL, RabbitMQ and a served payroll-worker: test_deductions.py."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from mport_shared.events import DeductionLineKind
from portal_api.catalog.products import CATALOG
from portal_api.errors import DomainError, ErrorCode, NotSignedIn
from portal_api.payroll.client import (
    ClosedPeriod,
    ExportFile,
    PayrollRefused,
    PayrollUnavailable,
    PeriodStatus,
    _filename,
)
from portal_api.payroll.domain import ExportFormat, by_period, period_of, valid_period
from portal_api.payroll.service import (
    RecordOutcome,
    close_period,
    company_deductions,
    deductions_of,
    export_period,
    record_deduction,
)

from .conftest import deduction_line
from .fakes import FakeUnitOfWork
from .test_admin_rules import DEMO, FJORD, person

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a unit test of the deductions' rules tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@dataclass
class FakePayroll:
    calls: list[tuple[str, uuid.UUID, str]] = field(default_factory=list)
    error: Exception | None = None

    def _called(self, what: str, company_id: uuid.UUID, period: str) -> None:
        self.calls.append((what, company_id, period))
        if self.error is not None:
            raise self.error

    async def periods(self, company_id: uuid.UUID) -> list[PeriodStatus]:
        self._called("periods", company_id, "")
        return [PeriodStatus(period="2026-12", status="open")]

    async def close(self, company_id: uuid.UUID, period: str) -> ClosedPeriod:
        self._called("close", company_id, period)
        return ClosedPeriod(period=period, status="closed", recurring_lines_generated=3)

    async def export(self, company_id: uuid.UUID, period: str, export_format: ExportFormat) -> ExportFile:
        self._called(f"export {export_format}", company_id, period)
        return ExportFile(content=b"x", media_type="text/csv", filename="f.csv")


def world() -> tuple[FakeUnitOfWork, Any, Any, Any]:
    uow = FakeUnitOfWork(catalog=CATALOG)
    kari, ingrid, per = (
        person("Kari Nordmann"),
        person("Ingrid Berg", admin=True),
        person("Per Fjell", company=FJORD, admin=True),
    )
    for someone in (kari, ingrid, per):
        uow.add_employee(someone)
    return uow, kari, ingrid, per


async def test_a_line_is_recorded_once_whatever_message_carries_it() -> None:
    uow, kari, _, _ = world()
    line = deduction_line(uuid.uuid4(), employee_id=kari.id, company_id=DEMO)
    assert await record_deduction(uow, message_id="m1", line=line, recorded_at=NOW) is RecordOutcome.RECORDED
    assert await record_deduction(uow, message_id="m1", line=line, recorded_at=NOW) is RecordOutcome.DUPLICATE
    assert await record_deduction(uow, message_id="m2", line=line, recorded_at=NOW) is RecordOutcome.DUPLICATE
    assert list(uow.deductions.stored) == [line.line_id]
    assert {"m1", "m2"} <= uow.messages.handled  # the second message is handled, not retried


async def test_the_employee_gets_their_own_lines_by_period_newest_first_with_sums() -> None:
    uow, kari, _, _ = world()
    order = uuid.uuid4()
    first = deduction_line(order, employee_id=kari.id, company_id=DEMO, period="2026-11")
    kept = deduction_line(order, employee_id=kari.id, company_id=DEMO, amount_ore=2_450)
    taken = deduction_line(order, employee_id=kari.id, company_id=DEMO, amount_ore=14_900)
    back = deduction_line(
        order, employee_id=kari.id, company_id=DEMO, amount_ore=-14_900, kind=DeductionLineKind.REVERSAL
    )
    someone_else = deduction_line(order, employee_id=uuid.uuid4(), company_id=DEMO, amount_ore=1)
    for i, line in enumerate((first, kept, taken, back, someone_else)):
        reversal = {"reverses_line_id": taken.line_id, "reason": "feil"} if line is back else {}
        await record_deduction(uow, message_id=f"m{i}", line=line, recorded_at=NOW, **reversal)
    periods = await deductions_of(uow, kari.id)
    assert [(p.period, p.total_ore, len(p.lines)) for p in periods] == [
        ("2026-12", 2_450, 3),
        ("2026-11", 14_900, 1),
    ]
    with pytest.raises(NotSignedIn):
        await deductions_of(uow, uuid.uuid4())


def test_a_period_is_a_month_of_this_millennium_and_months_are_oslos() -> None:
    assert all(valid_period(p) for p in ("2026-01", "2026-12", "2000-06"))
    assert not any(
        valid_period(p) for p in ("2026-13", "2026-00", "2026-1", "26-12", "0202-12", "2026-12 ", "")
    )
    # 23:30 UTC on 30 November is already December in Oslo (CET, UTC+1); summer time is UTC+2.
    assert period_of(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-12"
    assert period_of(datetime(2026, 6, 30, 21, 59, tzinfo=UTC)) == "2026-06"
    assert period_of(datetime(2026, 6, 30, 22, 0, tzinfo=UTC)) == "2026-07"
    assert by_period([]) == []


async def test_close_and_export_ask_for_the_administrators_own_company_and_only_a_done_close_is_logged() -> (
    None
):
    uow, kari, ingrid, per = world()
    payroll = FakePayroll()
    closed = await close_period(uow, payroll, actor_id=per.id, period="2026-12", clock=lambda: NOW)
    assert closed.recurring_lines_generated == 3
    await export_period(uow, payroll, actor_id=ingrid.id, period="2026-12", export_format=ExportFormat.VISMA)
    assert payroll.calls == [("close", FJORD, "2026-12"), ("export visma", DEMO, "2026-12")]
    [entry] = uow.audit_log.stored
    assert (entry.company_id, entry.actor_employee_id, entry.action) == (
        FJORD,
        per.id,
        "payroll.period_closed",
    )
    assert entry.after == {"period": "2026-12", "status": "closed", "recurring_lines_generated": 3}

    with pytest.raises(DomainError) as refused:
        await close_period(uow, payroll, actor_id=kari.id, period="2026-12")
    assert refused.value.code is ErrorCode.NOT_AN_ADMINISTRATOR
    with pytest.raises(DomainError) as bad:
        await close_period(uow, payroll, actor_id=ingrid.id, period="2026-13")
    assert bad.value.code is ErrorCode.INVALID_PERIOD
    assert len(payroll.calls) == 2

    for error, code in (
        (PayrollUnavailable("down"), ErrorCode.PAYROLL_UNAVAILABLE),
        (PayrollRefused(400, "bad period"), ErrorCode.INVALID_PERIOD),
        (PayrollRefused(409, "busy"), ErrorCode.PAYROLL_REFUSED),
    ):
        payroll.error = error
        with pytest.raises(DomainError) as failed:
            await close_period(uow, payroll, actor_id=ingrid.id, period="2026-12")
        assert failed.value.code is code
    assert len(uow.audit_log.stored) == 1, "a close the payroll-worker did not do is not logged"


async def test_the_administrator_sees_only_their_companys_lines_per_employee() -> None:
    uow, kari, ingrid, per = world()
    siri = person("Siri Dahl", company=FJORD)
    uow.add_employee(siri)
    for i, line in enumerate(
        (
            deduction_line(uuid.uuid4(), employee_id=kari.id, company_id=DEMO, employee_number="1001"),
            deduction_line(
                uuid.uuid4(), employee_id=kari.id, company_id=DEMO, employee_number="1001", amount_ore=100
            ),
            deduction_line(uuid.uuid4(), employee_id=siri.id, company_id=FJORD, employee_number="2001"),
            deduction_line(
                uuid.uuid4(), employee_id=kari.id, company_id=DEMO, employee_number="1001", period="2026-11"
            ),
        )
    ):
        await record_deduction(uow, message_id=f"m{i}", line=line, recorded_at=NOW)
    _, demo = await company_deductions(uow, ingrid.id, "2026-12")
    assert [(e.name, e.total_ore, len(e.lines)) for e in demo.employees] == [("Kari Nordmann", 15_000, 2)]
    assert demo.total_ore == 15_000
    _, fjord = await company_deductions(uow, per.id, "2026-12")
    assert [e.name for e in fjord.employees] == ["Siri Dahl"]


def test_only_a_plain_filename_of_the_payroll_worker_is_passed_on() -> None:
    assert _filename("attachment; filename=visma-2026-12.csv") == "visma-2026-12.csv"
    assert _filename('attachment; filename="2026-12.json"') == "2026-12.json"
    assert _filename("attachment; filename=../../etc/passwd") is None
    assert _filename('attachment; filename="a\\r\\nSet-Cookie: x"') is None
    assert _filename("inline") is None


async def test_for_any_mix_of_lines_and_redeliveries_each_line_counts_once_in_its_period_and_employee() -> (
    None
):
    """A property over many random runs (seeded, so a failure repeats): whatever lines arrive, in
    whatever order and however often, the read model holds each once, every line is in exactly one
    period group and one employee group, and the sums are the lines' sums."""
    import random

    for seed in range(200):
        rng = random.Random(seed)
        uow, kari, ingrid, _ = world()
        staff = [kari, ingrid, *(person(f"Ansatt {i}") for i in range(rng.randint(0, 3)))]
        for someone in staff[2:]:
            uow.add_employee(someone)
        lines = [
            deduction_line(
                uuid.uuid4(),
                employee_id=(who := rng.choice(staff)).id,
                employee_number=who.employee_number,
                company_id=DEMO,
                period=f"2026-{rng.randint(1, 12):02d}",
                amount_ore=rng.choice((-1, 1)) * rng.randint(0, 200_000),
            )
            for _ in range(rng.randint(0, 12))
        ]
        deliveries = [(f"m{i}", line) for i, line in enumerate(lines)]
        deliveries += rng.choices(deliveries, k=rng.randint(0, 6)) if deliveries else []  # redelivered
        deliveries += [(f"again{i}", line) for i, line in enumerate(rng.sample(lines, k=len(lines) // 2))]
        rng.shuffle(deliveries)
        for message_id, line in deliveries:
            await record_deduction(uow, message_id=message_id, line=line, recorded_at=NOW)

        assert sorted(uow.deductions.stored) == sorted(line.line_id for line in lines), seed
        everyone = [g for someone in staff for g in await deductions_of(uow, someone.id)]
        assert sorted(d.line_id for g in everyone for d in g.lines) == sorted(line.line_id for line in lines)
        assert all(g.total_ore == sum(d.amount_ore for d in g.lines) for g in everyone)
        for someone in staff:
            periods = [g.period for g in await deductions_of(uow, someone.id)]
            assert periods == sorted(set(periods), reverse=True), seed
        for period in {line.period for line in lines}:
            _, found = await company_deductions(uow, ingrid.id, period)
            in_period = [line for line in lines if line.period == period]
            assert found.total_ore == sum(line.amount_ore for line in in_period), seed
            assert sorted(d.line_id for e in found.employees for d in e.lines) == sorted(
                line.line_id for line in in_period
            )
            assert len({e.employee_id for e in found.employees}) == len(found.employees)
