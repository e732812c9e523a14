"""The administrator's pages in the seed's language: Ansatte, an employee's page where each change
is confirmed first, Endringslogg; in the menu for administrators only; CSRF on every form."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from portal_api.models import Employee
from portal_api.seed import HAKON, INGRID, KARI, PER
from sqlalchemy import update

from .conftest import MakePortal, Portal, place_order, sign_in
from .test_pages import Html, button_named

pytestmark = pytest.mark.integration

HTML = {"Accept": "text/html"}


@pytest.fixture
async def ingrid(portal: Portal) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with portal.client() as client:
        yield client, await sign_in(client, INGRID.email)


async def page(client: httpx.AsyncClient, path: str, status: int = 200) -> Html:
    response = await client.get(path, headers=HTML)
    assert response.status_code == status, response.text
    return Html(response.text)


def menu(html: Html) -> list[str]:
    nav = html.one("nav", class_="top-menu")
    return [a.text for a in html.find("a", within=nav)]


async def form_post(client: httpx.AsyncClient, path: str, csrf: str | None, **fields: str) -> httpx.Response:
    data = {**fields, **({"csrf_token": csrf} if csrf is not None else {})}
    return await client.post(path, data=data, headers=HTML)


async def test_the_menu_shows_the_admin_pages_to_administrators_only(
    portal: Portal, ingrid: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = ingrid
    assert menu(await page(client, "/")) == [
        "HJEM", "ABONNEMENT", "TERMINAL", "SUPPORT", "KONTAKT OSS",
        "ANSATTE", "RETNINGSLINJER", "ENDRINGSLOGG", "LØNNSTREKK",
    ]  # fmt: skip
    async with portal.client() as kari:
        await sign_in(kari, KARI.email)
        assert "ANSATTE" not in menu(await page(kari, "/"))
        refused = await page(kari, "/admin/ansatte", 403)
        assert "Denne siden er bare for bedriftens mPort administrator." in refused.text
        await page(kari, "/admin/endringslogg", 403)
        await page(kari, f"/admin/ansatte/{HAKON.id}", 403)
        assert (
            await form_post(
                kari,
                f"/admin/ansatte/{HAKON.id}",
                kari.cookies["csrftoken"],
                endring="laas-opp",
                bekreftet="1",
            )
        ).status_code == 403


async def test_ansatte_lists_number_self_service_verified_and_locked(
    portal: Portal, ingrid: tuple[httpx.AsyncClient, str]
) -> None:
    async with portal.app.state.runtime.sessions() as session:
        await session.execute(
            update(Employee).where(Employee.id == HAKON.id).values(verification_failures=100)
        )
        await session.commit()
    client, _ = ingrid
    html = await page(client, "/admin/ansatte")
    assert html.one("h1").text == "Ansatte"
    assert "De ansatte i Demo Bedrift AS." in html.text
    assert [h.text for h in html.find("th", scope="col")] == [
        "Navn", "Telefonnummer", "Selvbetjening", "Nummer bekreftet", "Låst",
    ]  # fmt: skip
    table = {
        html.one("a", within=tr).text: [c.text for c in html.find("td", within=tr)]
        for tr in html.find("tr")
        if tr.attrs.get("data-employee-id")
    }
    assert table == {
        "Håkon Hafell": ["4748123456 Bedrift Total C (10 GB)", "Ikke aktivert", "Ikke bekreftet", "Låst"],
        "Ingrid Berg": ["Ingen abonnement", "Ikke aktivert", "Ikke bekreftet", "Nei"],
        "Kari Nordmann": ["4791234567 Bedrift Total C (10 GB)", "Aktiv", "05.01.2026 10:00", "Nei"],
    }
    assert "Siri Dahl" not in html.text


async def test_ingrid_corrects_a_number_confirms_it_and_sees_it_in_the_endringslogg(
    portal: Portal, ingrid: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = ingrid
    path = f"/admin/ansatte/{KARI.id}"
    html = await page(client, path)
    assert html.one("h1").text == "Kari Nordmann"
    assert html.one("label", for_="msisdn").text == "Riktig telefonnummer"
    button_named(html, "Rett nummer")
    button_named(html, "Slå av selvbetjening")
    assert "Avviste SMS-er" in html.text  # the section the verification data goes into
    form_token = html.one("input", id="msisdn")
    assert form_token.attrs["value"] == "4791234567"

    asked = await form_post(client, path, csrf, endring="nummer", msisdn="+47 998 87 766")
    assert asked.status_code == 200, asked.text
    confirm = Html(asked.text)
    assert "Bekreft endring" in confirm.text
    changes = [[c.text for c in confirm.find(within=tr)] for tr in confirm.find("tr")][1:]
    assert changes == [
        ["Telefonnummer", "4791234567", "4799887766"],
        ["Selvbetjening aktiv", "ja", "nei"],
        ["Nummer bekreftet", "05.01.2026 10:00", "–"],
    ]
    assert "Kari Nordmann blir logget ut på alle enheter." in confirm.text
    employee, _ = await _kari(portal)
    assert employee.phone_verified_at is not None  # nothing changed before the confirmation

    done = await form_post(client, path, csrf, endring="nummer", msisdn="4799887766", bekreftet="1")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{path}?lagret=1"
    after = await page(client, done.headers["location"])
    assert "Endringen er lagret." in after.text
    assert after.one("dd", data_role="msisdn").text == "4799887766"
    assert after.one("dd", data_role="verified").text == "Ikke bekreftet"
    assert after.one("dd", data_role="self-service").text == "Ikke aktivert"

    log = await page(client, "/admin/endringslogg")
    assert log.one("h1").text == "Endringslogg"
    [row] = [tr for tr in log.find("tr") if log.find("td", within=tr)]
    cells = [c.text for c in log.find(within=row) if c.tag in ("td", "th")]
    assert cells[1:3] == ["Ingrid Berg", "Kari Nordmann"]
    assert [li.text for li in log.find("li", within=row)] == [
        "Telefonnummer: 4791234567 → 4799887766",
        "Selvbetjening aktiv: ja → nei",
        "Nummer bekreftet: 05.01.2026 10:00 → –",
    ]


async def _kari(portal: Portal) -> tuple[Employee, None]:
    async with portal.app.state.runtime.sessions() as session:
        employee = await session.get(Employee, KARI.id)
        assert employee is not None
        return employee, None


async def test_a_bad_number_is_shown_on_the_page_with_the_field_marked(
    portal: Portal, ingrid: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = ingrid
    response = await form_post(client, f"/admin/ansatte/{KARI.id}", csrf, endring="nummer", msisdn="12ab")
    assert response.status_code == 422
    html = Html(response.text)
    assert "Telefonnummeret er ikke gyldig" in html.one("p", role="alert").text
    field = html.one("input", id="msisdn")
    assert (field.attrs["value"], field.attrs["aria-invalid"]) == ("12ab", "true")
    async with portal.client() as kari:
        kari_csrf = await sign_in(kari, KARI.email)
        await place_order(kari, kari_csrf, "ekstra-data-1gb")
    refused = await form_post(
        client, f"/admin/ansatte/{KARI.id}", csrf, endring="nummer", msisdn="4799887766", bekreftet="1"
    )
    assert refused.status_code == 409
    assert "bestillinger som operatøren ikke er ferdig med" in Html(refused.text).text


async def test_switching_off_and_unlocking_from_the_page(
    portal: Portal, ingrid: tuple[httpx.AsyncClient, str]
) -> None:
    async with portal.app.state.runtime.sessions() as session:
        await session.execute(
            update(Employee).where(Employee.id == HAKON.id).values(verification_failures=100)
        )
        await session.commit()
    client, csrf = ingrid
    path = f"/admin/ansatte/{HAKON.id}"
    html = await page(client, path)
    assert "Håkon Hafell har tastet feil engangskode 100 ganger på rad" in html.text
    button_named(html, "Lås opp")
    assert (await form_post(client, path, csrf, endring="laas-opp", bekreftet="1")).status_code == 303
    assert (
        await form_post(client, path, csrf, endring="selvbetjening", selvbetjening="av", bekreftet="1")
    ).status_code == 303
    html = await page(client, path)
    assert "Ikke låst." in html.text
    button_named(html, "Slå på selvbetjening")
    assert html.one("dd", data_role="self-service").text == "Slått av"
    log = await page(client, "/admin/endringslogg")
    assert "Selvbetjening tillatt: ja → nei" in log.text
    assert "Feil engangskoder på rad: 100 → 0" in log.text


async def test_a_form_without_the_csrf_token_changes_nothing(
    portal: Portal, ingrid: tuple[httpx.AsyncClient, str]
) -> None:
    client, _ = ingrid
    response = await form_post(
        client, f"/admin/ansatte/{KARI.id}", None, endring="selvbetjening", selvbetjening="av", bekreftet="1"
    )
    assert response.status_code == 403
    employee, _ = await _kari(portal)
    assert employee.self_service_allowed is True


async def test_another_companys_employee_is_a_404_page(portal: Portal) -> None:
    async with portal.client() as per:
        csrf = await sign_in(per, PER.email)
        for path in (f"/admin/ansatte/{KARI.id}", f"/admin/ansatte/{uuid.uuid4()}"):
            html = await page(per, path, 404)
            assert "Fant ingen slik ansatt i bedriften din." in html.text
            response = await form_post(
                per, path, csrf, endring="selvbetjening", selvbetjening="av", bekreftet="1"
            )
            assert response.status_code == 404
    employee, _ = await _kari(portal)
    assert employee.self_service_allowed is True


async def test_the_admin_pages_in_english(ingrid: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = ingrid
    html = await page(client, "/admin/ansatte?lang=en")
    assert html.one("h1").text == "Employees"
    assert "EMPLOYEES" in menu(html)
    assert (await page(client, "/admin/endringslogg")).one("h1").text == "Audit log"
    html = await page(client, f"/admin/ansatte/{KARI.id}")
    button_named(html, "Correct number")


async def test_the_employee_page_lists_the_sms_the_portal_refused_to_send(make_portal: MakePortal) -> None:
    # A spent budget (0 a day) refuses Håkon's code; the refusal shows on his page for Ingrid,
    # and nothing of it on Kari's.
    portal = await make_portal(SMS_DAILY_BUDGET_PER_COMPANY=0)
    async with portal.client() as hakon, portal.client() as admin:
        csrf = await sign_in(hakon, HAKON.email)
        refused = await hakon.post("/api/v1/verifications", headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 429, refused.text
        await sign_in(admin, INGRID.email)
        html = await page(admin, f"/admin/ansatte/{HAKON.id}")
        section = html.one("section", data_section="sms-refusals")
        [line] = [li.text for li in html.find("li", within=section)]
        assert line.endswith(
            f"engangskode til {HAKON.msisdn} ikke sendt: bedriftens SMS-kvote for dagen er brukt opp"
        )
        kari = await page(admin, f"/admin/ansatte/{KARI.id}")
        assert not kari.find("li", within=kari.one("section", data_section="sms-refusals"))
