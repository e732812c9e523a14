"""The deductions in the portal: the read model fed by the payroll-worker's events on real RabbitMQ
and PostgreSQL (once per line, reversals shown), Mine lønnstrekk and `GET /api/v1/deductions`, and
the administrator's Lønnstrekk, whose periods, close and exports go to a served fake
payroll-worker (the token and the administrator's own company id checked), or to none (503)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse, Response
from mport_shared.events import (
    DeductionLine,
    DeductionLineKind,
    PayrollDeductionRecorded,
    PayrollDeductionReversed,
)
from mport_shared.testing import served, wait_for
from portal_api.models import AuditEntry, Deduction, tables
from portal_api.payroll.domain import period_of
from portal_api.payroll.service import record_deduction
from portal_api.seed import DEMO_COMPANY_ID, FJORD_COMPANY_ID, INGRID, KARI, PER, SIRI
from sqlalchemy import func, select

from .conftest import (
    MakePortal,
    Portal,
    deduction_line,
    payroll_event,
    place_order,
    publish,
    sign_in,
)
from .test_pages import Html, event_stream
from .test_pages import served as served_portal

pytestmark = pytest.mark.integration

TOKEN = "payroll-test-token"
PROBLEMS = "https://mport.no/problems/"


async def record(portal: Portal, line: DeductionLine, **reversal: Any) -> None:
    """Put a line in the read model as the handler does (without the broker)."""
    async with portal.app.state.units.new() as uow:
        await record_deduction(
            uow, message_id=str(uuid.uuid4()), line=line, recorded_at=datetime.now(UTC), **reversal
        )


async def lines_in_db(portal: Portal) -> int:
    async with portal.app.state.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Deduction)) or 0)


# ---- the read model, from the bus ------------------------------------------------------------


async def test_a_redelivered_or_republished_line_adds_one_line_and_a_reversal_shows(portal: Portal) -> None:
    async with portal.client() as kari:
        csrf = await sign_in(kari, KARI.email)
        order = await place_order(kari, csrf, "ekstra-data-15gb")
        line = deduction_line(order["id"])
        recorded = payroll_event(PayrollDeductionRecorded(line=line, recorded_at=datetime.now(UTC)))
        # The same message twice (a redelivery), and the same line in a message of its own (a
        # payroll-worker that published it again).
        again = payroll_event(PayrollDeductionRecorded(line=line, recorded_at=datetime.now(UTC)))
        reversal = deduction_line(order["id"], amount_ore=-14_900, kind=DeductionLineKind.REVERSAL)
        reversed_ = payroll_event(
            PayrollDeductionReversed(
                line=reversal,
                reverses_line_id=line.line_id,
                reason="charged by mistake",
                reversed_at=datetime.now(UTC),
            )
        )
        await publish(portal.amqp_url, recorded, recorded, again)

        async def handled(*ids: str) -> bool:
            async with portal.app.state.runtime.sessions() as session:
                seen = set(
                    (
                        await session.scalars(
                            select(tables.inbox.c.message_id).where(tables.inbox.c.message_id.in_(ids))
                        )
                    ).all()
                )
            return seen == set(ids)

        await wait_for(lambda: handled(recorded.id, again.id), timeout_s=15, what="both messages handled")
        body = (await kari.get("/api/v1/deductions")).json()
        assert [(p["period"], p["total_ore"], len(p["lines"])) for p in body["periods"]] == [
            ("2026-12", 14_900, 1)
        ]
        assert await lines_in_db(portal) == 1

        await publish(portal.amqp_url, reversed_)
        await wait_for(lambda: handled(reversed_.id), timeout_s=15, what="the reversal handled")
        body = (await kari.get("/api/v1/deductions")).json()
        (period,) = body["periods"]
        assert period["total_ore"] == 0
        by_id = {item["id"]: item for item in period["lines"]}
        assert by_id[str(line.line_id)]["amount_ore"] == 14_900
        back = by_id[str(reversal.line_id)]
        assert (back["kind"], back["amount_ore"], back["reverses_line_id"], back["reason"]) == (
            "reversal",
            -14_900,
            str(line.line_id),
            "charged by mistake",
        )
        assert await lines_in_db(portal) == 2


async def test_a_new_line_is_pushed_to_its_employees_event_stream_only(portal: Portal) -> None:
    async with (
        served_portal(portal.app) as base_url,
        httpx.AsyncClient(base_url=base_url) as kari,
        httpx.AsyncClient(base_url=base_url) as siri,
    ):
        csrf = await sign_in(kari, KARI.email)
        await sign_in(siri, SIRI.email)
        order = await place_order(kari, csrf, "ekstra-data-15gb")
        async with event_stream(kari) as kari_events, event_stream(siri) as siri_events:
            karis = deduction_line(order["id"])
            siris = deduction_line(
                uuid.uuid4(), employee_id=SIRI.id, company_id=FJORD_COMPANY_ID, employee_number="2001"
            )
            # Kari's first: a stream that carried another's line would show it before its own.
            await publish(
                portal.amqp_url,
                payroll_event(PayrollDeductionRecorded(line=karis, recorded_at=datetime.now(UTC))),
                payroll_event(PayrollDeductionRecorded(line=siris, recorded_at=datetime.now(UTC))),
            )
            name, data = await siri_events.next_event()
            assert (name, json.loads(data)["line_id"]) == ("deduction", str(siris.line_id))
            name, data = await kari_events.next_event()
            pushed = json.loads(data)
            assert name == "deduction"
            assert pushed == {
                "line_id": str(karis.line_id),
                "order_id": order["id"],
                "period": "2026-12",
                "kind": "one_off",
                "amount_ore": 14_900,
                "text": "Ekstra Data 15GB 01.12.2026",
            }
        page = Html((await kari.get("/lonnstrekk")).text)
        assert page.find("div", data_live_deductions="")  # the page's script listens for them


# ---- the employee's view -----------------------------------------------------------------------


async def test_the_employee_sees_their_own_lines_by_period_with_sums_each_linked_to_its_order(
    portal: Portal,
) -> None:
    async with portal.client() as kari, portal.client() as siri:
        csrf = await sign_in(kari, KARI.email)
        await sign_in(siri, SIRI.email)
        data = await place_order(kari, csrf, "ekstra-data-15gb")
        sky = await place_order(kari, csrf, "min-sky-25gb")
        await record(portal, deduction_line(data["id"], period="2026-11", text="Ekstra Data 15GB 20.11.2026"))
        await record(
            portal,
            deduction_line(
                sky["id"],
                amount_ore=2_450,
                kind=DeductionLineKind.MONTHLY,
                product_code="min-sky-25gb",
                text="Min Sky 25GB desember 2026",
            ),
        )
        await record(portal, deduction_line(data["id"], amount_ore=7_450, text="Ekstra Data 15GB 02.12.2026"))
        siris = deduction_line(
            uuid.uuid4(),
            employee_id=SIRI.id,
            company_id=FJORD_COMPANY_ID,
            employee_number=SIRI.employee_number,
            text="Siris eget trekk",
        )
        await record(portal, siris)

        body = (await kari.get("/api/v1/deductions")).json()
        assert [(p["period"], p["total_ore"]) for p in body["periods"]] == [
            ("2026-12", 9_900),
            ("2026-11", 14_900),
        ]
        first = body["periods"][0]["lines"][0]
        assert set(first) >= {
            "id",
            "order_id",
            "order_url",
            "text",
            "amount_ore",
            "kind",
            "wage_type",
            "period",
            "consent_id",
        }
        assert first["order_url"] == f"/api/v1/orders/{first['order_id']}"
        assert (await kari.get(first["order_url"])).status_code == 200
        assert "Siris eget trekk" not in str(body)

        page = Html((await kari.get("/lonnstrekk")).text)
        assert page.one("h1").text == "Mine lønnstrekk"
        december = page.one("section", data_period="2026-12")
        assert "Lønnsperiode 2026-12" in december.text
        assert "Sum lønnstrekk 2026-12" in december.text
        assert page.one("td", within=december, data_role="total").text == "99,00 kr"
        rows = page.find("tr", within=december)
        texts = [r.text for r in rows]
        assert any("Min Sky 25GB desember 2026" in text and "Månedlig trekk" in text for text in texts)
        links = {a.attrs["href"] for a in page.find("a") if a.text == "Se bestillingen"}
        assert links == {f"/bestillinger/{data['id']}", f"/bestillinger/{sky['id']}"}
        # The link shows the order as Mine bestillinger does (however old it is), to its employee only.
        one = Html((await kari.get(f"/bestillinger/{data['id']}")).text)
        assert [row.attrs["data-order-id"] for row in one.find("tr") if "data-order-id" in row.attrs] == [
            data["id"]
        ]
        assert "Ekstra Data 15GB" in one.text
        assert "Mine bestillinger" in one.text
        refused = await siri.get(f"/bestillinger/{data['id']}")
        assert refused.status_code == 404
        assert "Fant ingen slik bestilling blant dine bestillinger." in Html(refused.text).text
        assert Html((await kari.get("/bestillinger")).text).one("tr", id=f"ordre-{data['id']}")
        assert "Siris eget trekk" not in page.text

        siri_body = (await siri.get("/api/v1/deductions")).json()
        assert [line["text"] for p in siri_body["periods"] for line in p["lines"]] == ["Siris eget trekk"]
        siri_page = Html((await siri.get("/lonnstrekk")).text)
        assert "Ekstra Data 15GB" not in siri_page.text
        empty = Html((await kari.get("/lonnstrekk?lang=en")).text)
        assert empty.one("h1").text == "My salary deductions"
        # Reachable from the pages an employee uses.
        for path in ("/", "/abonnement", "/bestillinger"):
            assert any(
                a.attrs.get("href") == "/lonnstrekk" for a in Html((await kari.get(path)).text).find("a")
            ), path


async def test_mine_lonnstrekk_without_lines_says_so(portal: Portal) -> None:
    async with portal.client() as kari:
        await sign_in(kari, KARI.email)
        assert (await kari.get("/api/v1/deductions")).json() == {"periods": []}
        assert "Du har ingen lønnstrekk." in Html((await kari.get("/lonnstrekk")).text).text


# ---- the administrator's view, through a fake payroll-worker -----------------------------------


@dataclass
class FakePayrollWorker:
    """The payroll-worker's internal HTTP API as the preamble fixes it, keeping what it was asked."""

    token: str = TOKEN
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, auth)
    closed: dict[tuple[str, str], int] = field(default_factory=dict)
    fail: int | None = None  # answer every request with this status

    def app(self) -> FastAPI:
        app = FastAPI()

        def refused(authorization: str | None) -> Response | None:
            if self.fail is not None:
                return JSONResponse({"title": "broken", "detail": "told to fail"}, status_code=self.fail)
            if authorization != f"Bearer {self.token}":
                return JSONResponse(
                    {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "bad token"},
                    status_code=401,
                    media_type="application/problem+json",
                )
            return None

        @app.get("/internal/companies/{company_id}/periods")
        async def periods(company_id: str, authorization: Annotated[str | None, Header()] = None) -> Response:
            self.calls.append(("GET periods", company_id, authorization))
            if (no := refused(authorization)) is not None:
                return no
            listed: list[dict[str, Any]] = [
                {
                    "period": "2026-11",
                    "status": "closed",
                    "closed_at": "2026-12-01T07:00:00Z",
                    "lines": 3,
                    "total_ore": 30_000,
                },
                {"period": "2026-12", "status": "open", "closed_at": None, "lines": 1, "total_ore": 14_900},
            ]
            for item in listed:
                if (company_id, item["period"]) in self.closed:
                    item["status"] = "closed"
            return JSONResponse(listed)

        @app.post("/internal/companies/{company_id}/periods/{period}/close")
        async def close(
            company_id: str, period: str, authorization: Annotated[str | None, Header()] = None
        ) -> Response:
            self.calls.append(("POST close", f"{company_id}/{period}", authorization))
            if (no := refused(authorization)) is not None:
                return no
            generated = 0 if (company_id, period) in self.closed else 2
            self.closed[company_id, period] = generated
            return JSONResponse(
                {
                    "period": period,
                    "status": "closed",
                    "closed_at": "2026-12-31T23:00:00Z",
                    "recurring_lines_generated": generated,
                }
            )

        @app.get("/internal/companies/{company_id}/periods/{period}/export")
        async def export(
            company_id: str,
            period: str,
            format: Annotated[str, Query()],
            authorization: Annotated[str | None, Header()] = None,
        ) -> Response:
            self.calls.append(("GET export", f"{company_id}/{period}/{format}", authorization))
            if (no := refused(authorization)) is not None:
                return no
            if format == "json":
                return JSONResponse(
                    {"company_id": company_id, "period": period, "lines": []},
                    headers={"Content-Disposition": f"attachment; filename={period}.json"},
                )
            return Response(
                f"2026;12;1001;5200;;1;;-149.00;;;;\r\n{company_id}\r\n",
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f"attachment; filename={format}-{period}.csv"},
            )

        return app


@contextlib.asynccontextmanager
async def payroll_worker(make_portal: MakePortal, fake: FakePayrollWorker) -> AsyncIterator[Portal]:
    async with served(fake.app()) as url:
        yield await make_portal(PAYROLL_WORKER_URL=url, PAYROLL_API_TOKEN=TOKEN)


async def test_the_administrator_closes_and_exports_their_own_company_with_the_token(
    make_portal: MakePortal,
) -> None:
    fake = FakePayrollWorker()
    async with payroll_worker(make_portal, fake) as portal, portal.client() as ingrid, portal.client() as per:
        ingrid_csrf = await sign_in(ingrid, INGRID.email)
        per_csrf = await sign_in(per, PER.email)

        periods = await ingrid.get("/api/v1/admin/payroll/periods")
        assert periods.status_code == 200, periods.text
        assert [(p["period"], p["status"]) for p in periods.json()] == [
            ("2026-11", "closed"),
            ("2026-12", "open"),
        ]

        closed = await ingrid.post(
            "/api/v1/admin/payroll/periods/2026-12/close", headers={"X-CSRF-Token": ingrid_csrf}
        )
        assert closed.status_code == 200, closed.text
        assert (closed.json()["status"], closed.json()["recurring_lines_generated"]) == ("closed", 2)
        again = await ingrid.post(
            "/api/v1/admin/payroll/periods/2026-12/close", headers={"X-CSRF-Token": ingrid_csrf}
        )
        assert (again.status_code, again.json()["recurring_lines_generated"]) == (200, 0)

        visma = await ingrid.get("/api/v1/admin/payroll/periods/2026-12/export", params={"format": "visma"})
        assert visma.status_code == 200, visma.text
        assert visma.headers["content-type"].startswith("text/csv")
        assert visma.headers["content-disposition"] == 'attachment; filename="visma-2026-12.csv"'
        assert str(DEMO_COMPANY_ID) in visma.text
        as_json = await ingrid.get("/api/v1/admin/payroll/periods/2026-12/export?format=json")
        assert as_json.json()["company_id"] == str(DEMO_COMPANY_ID)
        assert as_json.headers["content-disposition"] == 'attachment; filename="2026-12.json"'
        tripletex = await ingrid.get("/api/v1/admin/payroll/periods/2026-12/export?format=tripletex")
        assert tripletex.status_code == 200

        # Per of Fjord Logistikk closes and exports Fjord's period, never Demo Bedrift's.
        per_closed = await per.post(
            "/api/v1/admin/payroll/periods/2026-12/close", headers={"X-CSRF-Token": per_csrf}
        )
        assert per_closed.status_code == 200
        per_visma = await per.get("/api/v1/admin/payroll/periods/2026-12/export?format=visma")
        assert str(FJORD_COMPANY_ID) in per_visma.text
        assert str(DEMO_COMPANY_ID) not in per_visma.text

        assert {auth for _, _, auth in fake.calls} == {f"Bearer {TOKEN}"}
        companies = [where.split("/")[0] for _, where, _ in fake.calls]
        assert companies == [str(DEMO_COMPANY_ID)] * 6 + [str(FJORD_COMPANY_ID)] * 2

        # Every close is in the company's audit log, by the administrator who made it.
        log = (await ingrid.get("/api/v1/admin/audit-log")).json()
        closes = [e for e in log if e["action"] == "payroll.period_closed"]
        assert [
            (e["actor"]["name"], e["after"]["period"], e["after"]["recurring_lines_generated"])
            for e in closes
        ] == [
            (INGRID.name, "2026-12", 0),
            (INGRID.name, "2026-12", 2),
        ]
        per_log = (await per.get("/api/v1/admin/audit-log")).json()
        assert [e["actor"]["name"] for e in per_log if e["action"] == "payroll.period_closed"] == [PER.name]
        assert "Ingrid" not in str(per_log)


async def test_only_an_administrator_with_the_csrf_token_and_a_real_period_reaches_the_payroll_worker(
    make_portal: MakePortal,
) -> None:
    fake = FakePayrollWorker()
    async with (
        payroll_worker(make_portal, fake) as portal,
        portal.client() as kari,
        portal.client() as ingrid,
    ):
        kari_csrf = await sign_in(kari, KARI.email)
        ingrid_csrf = await sign_in(ingrid, INGRID.email)
        close = "/api/v1/admin/payroll/periods/2026-12/close"

        no_csrf = await ingrid.post(close)
        assert (no_csrf.status_code, no_csrf.json()["type"]) == (403, PROBLEMS + "csrf-failed")
        wrong_csrf = await ingrid.post(close, headers={"X-CSRF-Token": "not-it"})
        assert wrong_csrf.status_code == 403
        for answer in (
            await kari.post(close, headers={"X-CSRF-Token": kari_csrf}),
            await kari.get("/api/v1/admin/payroll/periods"),
            await kari.get("/api/v1/admin/payroll/periods/2026-12/export?format=visma"),
            await kari.get("/api/v1/admin/payroll/deductions?period=2026-12"),
        ):
            assert (answer.status_code, answer.json()["type"]) == (403, PROBLEMS + "not-an-administrator")
        for bad in ("2026-13", "2026-1", "12-2026", "0202-12"):
            refused = await ingrid.post(
                f"/api/v1/admin/payroll/periods/{bad}/close", headers={"X-CSRF-Token": ingrid_csrf}
            )
            assert (refused.status_code, refused.json()["type"]) == (400, PROBLEMS + "invalid-period"), bad
            assert refused.headers["content-type"] == "application/problem+json"
        bad_format = await ingrid.get("/api/v1/admin/payroll/periods/2026-12/export?format=excel")
        assert (bad_format.status_code, bad_format.json()["type"]) == (422, PROBLEMS + "invalid-request")
        page_close = await ingrid.post(
            "/admin/lonnstrekk/lukk", data={"periode": "2026-12", "bekreftet": "1"}
        )
        assert page_close.status_code == 403
        assert fake.calls == []
        async with portal.app.state.runtime.sessions() as session:
            assert (await session.scalars(select(AuditEntry))).all() == []


async def test_a_payroll_worker_that_refuses_the_token_or_fails_is_a_503_never_a_500(
    make_portal: MakePortal,
) -> None:
    fake = FakePayrollWorker(token="another-token")
    async with payroll_worker(make_portal, fake) as portal, portal.client() as ingrid:
        csrf = await sign_in(ingrid, INGRID.email)
        for status in (None, 500, 502):
            fake.fail = status
            closed = await ingrid.post(
                "/api/v1/admin/payroll/periods/2026-12/close", headers={"X-CSRF-Token": csrf}
            )
            assert (closed.status_code, closed.json()["type"]) == (503, PROBLEMS + "payroll-unavailable"), (
                status
            )
            export = await ingrid.get("/api/v1/admin/payroll/periods/2026-12/export?format=visma")
            assert export.status_code == 503
        fake.fail = 404
        refused = await ingrid.post(
            "/api/v1/admin/payroll/periods/2026-12/close", headers={"X-CSRF-Token": csrf}
        )
        assert (refused.status_code, refused.json()["type"]) == (409, PROBLEMS + "payroll-refused")
        fake.fail = 400
        refused = await ingrid.post(
            "/api/v1/admin/payroll/periods/2026-12/close", headers={"X-CSRF-Token": csrf}
        )
        assert (refused.status_code, refused.json()["type"]) == (400, PROBLEMS + "invalid-period")
        async with portal.app.state.runtime.sessions() as session:
            assert (await session.scalars(select(AuditEntry))).all() == [], (
                "a close that did not happen is not logged"
            )


async def test_with_the_payroll_worker_down_the_api_answers_503_and_the_page_still_shows_the_totals(
    portal: Portal,
) -> None:
    # The portal fixture's PAYROLL_WORKER_URL is a port where nothing answers.
    async with portal.client() as ingrid, portal.client() as kari:
        csrf = await sign_in(ingrid, INGRID.email)
        kari_csrf = await sign_in(kari, KARI.email)
        order = await place_order(kari, kari_csrf, "ekstra-data-15gb")
        period = period_of(datetime.now(UTC))
        await record(portal, deduction_line(order["id"], period=period))
        for answer in (
            await ingrid.post(
                f"/api/v1/admin/payroll/periods/{period}/close", headers={"X-CSRF-Token": csrf}
            ),
            await ingrid.get(f"/api/v1/admin/payroll/periods/{period}/export?format=visma"),
            await ingrid.get("/api/v1/admin/payroll/periods"),
        ):
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            body = answer.json()
            assert body["type"] == PROBLEMS + "payroll-unavailable"
            assert "payroll" in body["detail"]

        page = await ingrid.get("/admin/lonnstrekk")
        assert page.status_code == 200
        html = Html(page.text)
        assert "Lønnssystemet svarer ikke" in html.one("p", id="payroll-unavailable").text
        assert html.one("td", data_role="total").text == "149,00 kr"
        closing = await ingrid.post(
            "/admin/lonnstrekk/lukk", data={"periode": period, "bekreftet": "1", "csrf_token": csrf}
        )
        assert closing.status_code == 503
        assert "perioden er ikke lukket" in Html(closing.text).one("p", id="payroll-error").text


async def test_the_admin_page_shows_periods_totals_per_employee_downloads_and_closes_after_confirmation(
    make_portal: MakePortal,
) -> None:
    fake = FakePayrollWorker()
    async with (
        payroll_worker(make_portal, fake) as portal,
        portal.client() as ingrid,
        portal.client() as kari,
    ):
        csrf = await sign_in(ingrid, INGRID.email)
        kari_csrf = await sign_in(kari, KARI.email)
        data = await place_order(kari, kari_csrf, "ekstra-data-15gb")
        sky = await place_order(kari, kari_csrf, "min-sky-25gb")
        await record(portal, deduction_line(data["id"]))
        await record(
            portal,
            deduction_line(sky["id"], amount_ore=2_450, kind=DeductionLineKind.MONTHLY, text="Min Sky 25GB"),
        )
        await record(
            portal,
            deduction_line(
                uuid.uuid4(),
                employee_id=SIRI.id,
                company_id=FJORD_COMPANY_ID,
                employee_number=SIRI.employee_number,
                text="Siris eget trekk",
                amount_ore=99_900,
            ),
        )

        api = (await ingrid.get("/api/v1/admin/payroll/deductions?period=2026-12")).json()
        assert api["total_ore"] == 17_350
        assert [
            (e["name"], e["employee_number"], e["total_ore"], len(e["lines"])) for e in api["employees"]
        ] == [(KARI.name, "1001", 17_350, 2)]
        bad = await ingrid.get("/api/v1/admin/payroll/deductions?period=2026-00")
        assert (bad.status_code, bad.json()["type"]) == (400, PROBLEMS + "invalid-period")

        page = Html((await ingrid.get("/admin/lonnstrekk?periode=2026-12")).text)
        assert page.one("h1").text == "Lønnstrekk"
        assert any(a.text == "LØNNSTREKK" and a.attrs.get("aria-current") == "page" for a in page.find("a"))
        assert page.one("tr", data_period="2026-11", data_status="closed").text.count("Lukket") == 1
        assert "Åpen" in page.one("tr", data_period="2026-12").text
        kari_row = page.one("tr", data_employee_number="1001")
        assert KARI.name in kari_row.text
        assert "173,50 kr" in kari_row.text
        assert page.one("td", data_role="sum").text == "173,50 kr"
        assert "Siris eget trekk" not in page.text
        assert SIRI.name not in page.text
        downloads = {a.text: a.attrs["href"] for a in page.find("a") if a.text.startswith("Last ned")}
        assert downloads == {
            "Last ned Visma": "/api/v1/admin/payroll/periods/2026-12/export?format=visma",
            "Last ned Tripletex": "/api/v1/admin/payroll/periods/2026-12/export?format=tripletex",
            "Last ned JSON": "/api/v1/admin/payroll/periods/2026-12/export?format=json",
        }
        for href in downloads.values():
            assert (await ingrid.get(href)).status_code == 200
        assert [b for b in page.find("button") if b.text == "Lukk periode"]
        picker = page.one("input", name="periode", type="month")
        assert picker.attrs["value"] == "2026-12"

        # Lukk periode asks first, and closes nothing until confirmed.
        asked = await ingrid.post("/admin/lonnstrekk/lukk", data={"periode": "2026-12", "csrf_token": csrf})
        assert asked.status_code == 200
        confirm = Html(asked.text)
        assert "Vil du lukke lønnsperioden 2026-12?" in confirm.text
        assert [b for b in confirm.find("button") if b.text == "Ja, lukk perioden"]
        assert not [c for c in fake.calls if c[0] == "POST close"]
        without_csrf = await ingrid.post(
            "/admin/lonnstrekk/lukk", data={"periode": "2026-12", "bekreftet": "1"}
        )
        assert without_csrf.status_code == 403
        assert not [c for c in fake.calls if c[0] == "POST close"]

        done = await ingrid.post(
            "/admin/lonnstrekk/lukk", data={"periode": "2026-12", "bekreftet": "1", "csrf_token": csrf}
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/admin/lonnstrekk?periode=2026-12&lukket=2"
        assert [c[1] for c in fake.calls if c[0] == "POST close"] == [f"{DEMO_COMPANY_ID}/2026-12"]
        after = Html((await ingrid.get(done.headers["location"])).text)
        assert "Lønnsperioden 2026-12 er lukket (2 månedlige trekk laget)." in after.text
        assert not [b for b in after.find("button") if b.text == "Lukk periode"]
        log = Html((await ingrid.get("/admin/endringslogg")).text)
        assert "Lønnsperiode: – → 2026-12" in log.text

        # An employee gets the administrator-only page, and the menu has no Lønnstrekk for them.
        refused = await kari.get("/admin/lonnstrekk")
        assert refused.status_code == 403
        assert "LØNNSTREKK" not in Html((await kari.get("/")).text).text


def test_the_openapi_document_names_the_payroll_routes_refusals() -> None:
    from portal_api.main import create_app
    from portal_api.settings import PortalSettings

    app = create_app(PortalSettings(database_url="sqlite+aiosqlite:///:memory:", PORTAL_MODE="local"))  # type: ignore[call-arg]
    paths = app.openapi()["paths"]
    close = paths["/api/v1/admin/payroll/periods/{period}/close"]["post"]["responses"]
    assert "payroll-unavailable" in close["503"]["content"]["application/problem+json"]["examples"]
    assert "csrf-failed" in close["403"]["content"]["application/problem+json"]["examples"]
    assert "invalid-period" in close["400"]["content"]["application/problem+json"]["examples"]
    export = paths["/api/v1/admin/payroll/periods/{period}/export"]["get"]
    [fmt] = [p for p in export["parameters"] if p["name"] == "format"]
    schema = fmt["schema"]
    if "$ref" in schema:
        schema = app.openapi()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert schema["enum"] == ["json", "visma", "tripletex"]
    assert "/api/v1/deductions" in paths
