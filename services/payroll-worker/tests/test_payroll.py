"""The use cases on a real database (PostgreSQL, and SQLite as `make run` has it): lines and their
events written in one transaction, a redelivered message adding nothing, events out of order,
a closed period, closes that are idempotent, and the internal HTTP API."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mport_shared.db import create_engine, migrate, session_factory
from mport_shared.events import Billing, Envelope, EventPayload, envelop
from mport_shared.testing import MakeDatabase
from mport_shared.tracing import continued, trace_id_of
from payroll_worker.api import internal_api
from payroll_worker.models import DeductionLineRow, ServiceRow, tables
from payroll_worker.payroll import Payroll
from pydantic import SecretStr
from sqlalchemy import event, func, select

from .conftest import COMPANY, completed, failed, snapshot

pytestmark = pytest.mark.integration

DEC_1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TOKEN = "test-token"


@pytest.fixture(params=["postgresql", "sqlite"])
async def payroll(
    request: pytest.FixtureRequest, make_database: MakeDatabase, tmp_path: Path
) -> AsyncIterator[Payroll]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'payroll-worker.db'}"
        await migrate("payroll_worker:migrations", url)
    else:
        url = await make_database("payroll_worker:migrations")
    engine = create_engine(url)
    # A clock in the spring of 2027, so that the tests may close the winter's periods.
    yield Payroll(
        session_factory(engine), default_wage_type="7000", clock=lambda: datetime(2027, 4, 1, tzinfo=UTC)
    )
    await engine.dispose()


def wrap(payload: EventPayload) -> Envelope[EventPayload]:
    return envelop(payload, source="/test", correlation_id="test")  # type: ignore[return-value]


async def line_rows(payroll: Payroll) -> list[DeductionLineRow]:
    async with payroll.sessions() as session:
        return list(await session.scalars(select(DeductionLineRow).order_by(DeductionLineRow.period)))


async def outbox(payroll: Payroll) -> list[dict[str, object]]:
    async with payroll.sessions() as session:
        bodies = await session.scalars(select(tables.outbox.c.body).order_by(tables.outbox.c.id))
        return [json.loads(b) for b in bodies]


async def test_a_completed_order_records_its_line_and_event_once(payroll: Payroll) -> None:
    message = wrap(completed(snapshot(), DEC_1))
    await payroll.on_order_completed(message)
    await payroll.on_order_completed(message)  # redelivered
    [row] = await line_rows(payroll)
    assert (row.kind, row.amount_ore, row.period, row.text) == (
        "one_off",
        4_900,
        "2026-12",
        "Ekstra Data 15GB 01.12.2026",
    )
    [event] = await outbox(payroll)
    assert event["type"] == "mport.payroll.deduction_recorded.v1"
    assert event["data"]["line"]["line_id"] == row.line_id  # type: ignore[index]
    # The same order in another message (a republish) adds nothing either: the line is unique.
    await payroll.on_order_completed(wrap(completed(snapshot(order_id=uuid.UUID(row.order_id)), DEC_1)))
    assert len(await line_rows(payroll)) == 1


async def test_a_failure_before_the_completion_charges_nothing(payroll: Payroll) -> None:
    order = snapshot()
    await payroll.on_order_failed(wrap(failed(order, DEC_1)))
    await payroll.on_order_completed(wrap(completed(order, DEC_1)))
    assert await line_rows(payroll) == []
    assert await outbox(payroll) == []


async def test_an_ending_before_its_service_completes_and_a_closed_period(payroll: Payroll) -> None:
    sky = snapshot(amount_ore=2_950, billing=Billing.MONTHLY, product_code="min_sky", product_name="Min Sky")
    ending = snapshot(amount_ore=0, action="delete", ends_order_id=sky.order_id, product_code="min_sky")
    await payroll.on_order_completed(wrap(completed(ending, datetime(2027, 1, 5, tzinfo=UTC))))
    await payroll.on_order_completed(wrap(completed(sky, DEC_1)))
    first = await payroll.close(COMPANY, "2026-12")
    assert first.recurring_lines_generated == 1
    again = await payroll.close(COMPANY, "2026-12")
    assert (again.recurring_lines_generated, again.closed_at) == (0, first.closed_at)
    # December is closed: an order that completed in December lands in January, and says so.
    await payroll.on_order_completed(wrap(completed(snapshot(), DEC_1)))
    assert (await payroll.close(COMPANY, "2027-01")).recurring_lines_generated == 1  # ended from February
    assert (await payroll.close(COMPANY, "2027-02")).recurring_lines_generated == 0
    rows = await line_rows(payroll)
    assert sorted((r.kind, r.period, r.moved_from_period or "") for r in rows) == [
        ("monthly", "2026-12", ""),
        ("monthly", "2027-01", ""),
        ("one_off", "2027-01", "2026-12"),
    ]
    moved = next(r for r in rows if r.kind == "one_off")
    assert moved.text == "Ekstra Data 15GB 01.12.2026 (overført fra 12.2026)"
    periods = {p.period: p for p in await payroll.periods(COMPANY)}
    assert periods["2026-12"].status == "closed"
    assert periods["2027-01"].lines == 2
    assert periods["2027-01"].total_ore == 2_950 + 4_900


async def test_a_mistaken_charge_is_reversed_not_edited(payroll: Payroll) -> None:
    order = snapshot()
    await payroll.on_order_completed(wrap(completed(order, DEC_1)))
    await payroll.on_order_failed(wrap(failed(order, DEC_1)))
    rows = await line_rows(payroll)
    assert sorted(r.amount_ore for r in rows) == [-4_900, 4_900]
    events = await outbox(payroll)
    assert [e["type"] for e in events] == [
        "mport.payroll.deduction_recorded.v1",
        "mport.payroll.deduction_reversed.v1",
    ]
    async with payroll.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(DeductionLineRow)) == 2


def api_app(payroll: Payroll) -> FastAPI:
    app = FastAPI()
    internal_api(app, payroll, token=SecretStr(TOKEN))
    return app


async def test_the_internal_api_needs_its_token_and_answers_problems(payroll: Payroll) -> None:
    await payroll.on_order_completed(wrap(completed(snapshot(), DEC_1)))
    base = f"/internal/companies/{COMPANY}/periods"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api_app(payroll)), base_url="http://w"
    ) as client:
        refused = await client.get(base)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "https://mport.no/problems/payroll-api-unauthorized"
        assert (await client.get(base, headers={"Authorization": "Bearer wrong"})).status_code == 401
        bad = await client.post(f"{base}/2026-13/close", headers=auth)
        assert bad.status_code == 400
        assert bad.json()["type"] == "https://mport.no/problems/payroll-bad-period"
        assert (await client.get("/internal/companies/not-a-uuid/periods", headers=auth)).status_code == 400
        future = await client.post(f"{base}/2027-06/close", headers=auth)  # two months ahead
        assert future.status_code == 409
        assert future.json()["type"] == "https://mport.no/problems/payroll-period-not-started"
        assert (await client.post(f"{base}/2027-05/close", headers=auth)).status_code == 200  # next month
        fmt = await client.get(f"{base}/2026-12/export?format=xlsx", headers=auth)
        assert fmt.status_code == 400
        assert fmt.json()["type"] == "https://mport.no/problems/payroll-unknown-export-format"
        closed = await client.post(f"{base}/2026-12/close", headers=auth)
        assert closed.status_code == 200
        assert closed.json()["status"] == "closed"
        assert (await client.post(f"{base}/2026-12/close", headers=auth)).json()[
            "recurring_lines_generated"
        ] == 0
        listed = (await client.get(base, headers=auth)).json()
        assert {"period": "2026-12", "status": "closed", "lines": 1, "total_ore": 4_900}.items() <= next(
            p for p in listed if p["period"] == "2026-12"
        ).items()
        for fmt_name, media in (
            ("json", "application/json"),
            ("visma", "text/csv; charset=utf-8"),
            ("tripletex", "text/csv; charset=utf-8"),
        ):
            first = await client.get(f"{base}/2026-12/export", params={"format": fmt_name}, headers=auth)
            second = await client.get(f"{base}/2026-12/export", params={"format": fmt_name}, headers=auth)
            assert first.status_code == 200
            assert first.headers["content-type"] == media
            assert first.headers["content-disposition"].startswith("attachment; filename=")
            assert first.content == second.content
        document = (await client.get(f"{base}/2026-12/export", headers=auth)).json()
        [line] = document["lines"]
        assert set(line) >= {
            "id",
            "order_id",
            "employee_number",
            "wage_type",
            "amount_ore",
            "quantity",
            "period",
            "text",
            "consent_id",
        }


async def test_a_close_and_a_completion_at_the_same_moment_never_lose_a_month(payroll: Payroll) -> None:
    """The company's lock: without it the close could miss a service the completion is about to
    commit into the period being closed, and that month would never be charged."""
    for _ in range(15):
        company = uuid.uuid4()
        await payroll.close(company, "2026-10")  # the company is known: only the lock orders them
        sky = snapshot(amount_ore=2_950, billing=Billing.MONTHLY, company_id=company)
        await asyncio.gather(
            payroll.close(company, "2026-12"), payroll.on_order_completed(wrap(completed(sky, DEC_1)))
        )
        async with payroll.sessions() as session:
            service = await session.scalar(select(ServiceRow).where(ServiceRow.order_id == str(sky.order_id)))
            charged = await session.scalar(
                select(func.count())
                .select_from(DeductionLineRow)
                .where(DeductionLineRow.order_id == str(sky.order_id), DeductionLineRow.period == "2026-12")
            )
        assert service is not None
        # Either the completion came first (December charged at the close) or the close did
        # (the service starts in January).
        assert (service.start_period, charged) in {("2026-12", 1), ("2027-01", 0)}


async def test_the_cli_closes_lists_and_exports(payroll: Payroll, tmp_path: Path) -> None:
    await payroll.on_order_completed(wrap(completed(snapshot(), DEC_1)))
    url = str(payroll.sessions.kw["bind"].url.render_as_string(hide_password=False))
    env = {**os.environ, "DATABASE_URL": url}

    async def run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "payroll_worker", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, _ = await run("close", "--company", str(COMPANY), "--period", "2026-12")
    assert code == 0
    assert json.loads(out)["status"] == "closed"
    code, out, _ = await run("periods", "--company", str(COMPANY))
    assert code == 0
    assert "2026-12  closed" in out
    target = tmp_path / "december.csv"
    args = (
        "export",
        "--company",
        str(COMPANY),
        "--period",
        "2026-12",
        "--format",
        "visma",
        "--output",
        str(target),
    )
    assert (await run(*args))[0] == 0
    assert target.read_bytes().startswith(b"2026;12;1001;7100;0.00;1.00;0.00;-49.00;")
    code, _, err = await run("close", "--company", str(COMPANY), "--period", "2026-13")
    assert code == 2
    assert "not a pay period" in err


async def test_of_two_endings_before_their_service_the_earlier_holds(payroll: Payroll) -> None:
    sky = snapshot(amount_ore=2_950, billing=Billing.MONTHLY)
    for at in (datetime(2027, 1, 10, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)):
        ending = snapshot(amount_ore=0, action="delete", ends_order_id=sky.order_id)
        await payroll.on_order_completed(wrap(completed(ending, at)))
    await payroll.on_order_completed(wrap(completed(sky, DEC_1)))
    await payroll.close(COMPANY, "2027-01")
    assert [r.period for r in await line_rows(payroll)] == ["2026-12"]


async def test_events_arriving_together_share_one_transaction_and_each_gets_its_own_answer(
    payroll: Payroll,
) -> None:
    commits = 0

    def count(_connection: object) -> None:
        nonlocal commits
        commits += 1

    engine = payroll.sessions.kw["bind"].sync_engine
    event.listen(engine, "commit", count)
    try:
        orders = [snapshot(employee_id=uuid.uuid4(), employee_number=str(2000 + i)) for i in range(20)]
        await asyncio.gather(*(payroll.on_order_completed(wrap(completed(o, DEC_1))) for o in orders))
    finally:
        event.remove(engine, "commit", count)
    assert commits < 5  # 20 events, decided together (one transaction each would be 20)
    assert sorted(r.order_id for r in await line_rows(payroll)) == sorted(str(o.order_id) for o in orders)
    assert len(await outbox(payroll)) == 20


async def test_events_decided_in_one_batch_each_stay_in_their_own_trace(payroll: Payroll) -> None:
    """The batch runs in the first event's context; each line's event still joins its own order's
    trace (the trace test of tests/e2e follows one order through the payroll-worker)."""
    orders = [snapshot(employee_id=uuid.uuid4(), employee_number=str(3000 + i)) for i in range(5)]
    traces = {str(o.order_id): f"{i + 1:032x}" for i, o in enumerate(orders)}

    async def handle(order: Any) -> None:
        with continued(f"00-{traces[str(order.order_id)]}-{1:016x}-01"):
            await payroll.on_order_completed(wrap(completed(order, DEC_1)))

    await asyncio.gather(*(handle(o) for o in orders))
    events = await outbox(payroll)
    assert len(events) == 5
    for body in events:
        line = body["data"]["line"]  # type: ignore[index]
        assert trace_id_of(str(body["traceparent"])) == traces[line["order_id"]]


async def test_in_one_batch_an_employees_events_are_decided_in_order_and_a_copy_adds_nothing(
    payroll: Payroll,
) -> None:
    order = snapshot()
    charged, reversed_ = wrap(completed(order, DEC_1)), wrap(failed(order, DEC_1))
    copy = charged  # the same message, redelivered while the first is in hand
    await asyncio.gather(
        payroll.on_order_completed(charged),
        payroll.on_order_failed(reversed_),
        payroll.on_order_completed(copy),
    )
    assert sorted(r.amount_ore for r in await line_rows(payroll)) == [-4_900, 4_900]
    assert [e["type"] for e in await outbox(payroll)] == [
        "mport.payroll.deduction_recorded.v1",
        "mport.payroll.deduction_reversed.v1",
    ]


async def test_an_event_that_cannot_be_handled_fails_alone_and_its_batch_is_still_recorded(
    payroll: Payroll, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payroll_worker import payroll as use_cases

    bad = snapshot(employee_id=uuid.uuid4())
    decide = use_cases.domain.on_completed

    def on_completed(event: Any, book: Any, **kwargs: Any) -> Any:
        if event.order.order_id == bad.order_id:
            raise RuntimeError("this one is broken")
        return decide(event, book, **kwargs)

    monkeypatch.setattr(use_cases.domain, "on_completed", on_completed)
    good = [snapshot(employee_id=uuid.uuid4()) for _ in range(5)]
    results = await asyncio.gather(
        *(payroll.on_order_completed(wrap(completed(o, DEC_1))) for o in [*good[:2], bad, *good[2:]]),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType"] * 2 + ["RuntimeError"] + ["NoneType"] * 3
    assert sorted(r.order_id for r in await line_rows(payroll)) == sorted(str(o.order_id) for o in good)
    assert len(await outbox(payroll)) == 5
