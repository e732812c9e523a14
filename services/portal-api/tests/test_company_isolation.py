"""One company sees nothing of another: Demo Bedrift AS and Fjord Logistikk AS through the API, the
pages, the event stream, and every route the portal has or is given later.

The route walk has two halves. Every GET route without path parameters is called by everyone of
both companies and must show nobody anything of the other company that an anonymous visitor is
not shown too (the local development sign-in lists every demo person to everyone). Every route
that names a thing by a path parameter, or that changes something, needs a `Probe` in `PROBES`
(or a reason in `EXEMPT`): `test_every_route_that_names_or_changes_a_thing_has_a_probe` fails for
a new route without one. A probe calls the route about the other company's things and expects the
answer a made-up id gets, 404 for whoever may use the route at all (not 403: existence is not
revealed), nothing of theirs in it and nothing of theirs changed; and expects the route to work
for the company's own rightful caller, so that a 404 is the scoping and not a broken probe."""

from __future__ import annotations

import contextlib
import html
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from mport_shared.events import Envelope, OrderCompleted, OrderSnapshot, OrderSubmitted
from portal_api.main import create_app
from portal_api.models import (
    ActiveService,
    AuditEntry,
    Company,
    Deduction,
    Employee,
    Order,
    Policy,
    SimCard,
    Subscription,
    Verification,
)
from portal_api.payroll.domain import period_of
from portal_api.payroll.service import record_deduction
from portal_api.seed import (
    DEMO_BEDRIFT,
    FJORD_LOGISTIKK,
    HAKON,
    INGRID,
    KARI,
    PER,
    SIRI,
    DemoCompany,
    DemoPerson,
)
from portal_api.settings import PortalSettings
from portal_api.verifications.domain import code_hmac
from sqlalchemy import or_, select
from starlette.routing import Mount

from .conftest import Portal, accepting, deduction_line, publish, sign_in, snapshot, worker_event
from .test_pages import EventStream, Html, event_stream, served

Role = Literal["employee", "admin"]
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PATH_PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")
Route = tuple[str, str]  # (method, path); a mount is ("MOUNT", path)

# What each company's employee orders before the walk: something of theirs for every probe to
# name, with delivery details only that company's data contains.
ORDERS: dict[uuid.UUID, list[tuple[str, dict[str, str]]]] = {
    DEMO_BEDRIFT.id: [
        ("ekstra-data-15gb", {}),
        ("bestill-sim", {"delivery_name": "Kari Nordmann", "delivery_address": "Storgata 1, 0155 Oslo"}),
    ],
    FJORD_LOGISTIKK.id: [
        ("ekstra-data-15gb", {}),
        ("bestill-sim", {"delivery_name": "Siri Dahl", "delivery_address": "Havnegata 7, 6002 Ålesund"}),
    ],
}
ROLES: tuple[Role, ...] = ("employee", "admin")
PEOPLE: dict[tuple[uuid.UUID, Role], DemoPerson] = {
    (DEMO_BEDRIFT.id, "employee"): KARI,
    (DEMO_BEDRIFT.id, "admin"): INGRID,
    (FJORD_LOGISTIKK.id, "employee"): SIRI,
    (FJORD_LOGISTIKK.id, "admin"): PER,
}


# ---- what a route can name, and how to call each route ---------------------------------------


@dataclass(frozen=True, kw_only=True)
class Things:
    """The ids and keys by which a route can name one company's things."""

    order_id: str
    order_product_code: str
    order_key: str  # the Idempotency-Key that placed the order
    employee_id: str
    verification_id: str  # a one-time code of the employee's, pending

    def made_up(self) -> Things:
        """The same kinds of names for things that do not exist."""
        return Things(
            order_id=str(uuid.uuid4()),
            order_product_code=self.order_product_code,
            order_key=str(uuid.uuid4()),
            employee_id=str(uuid.uuid4()),
            verification_id=str(uuid.uuid4()),
        )

    def ids(self) -> list[str]:
        return [self.order_id, self.order_key, self.employee_id, self.verification_id]


# The value of each path parameter: the thing of the other company's it names. A route with a
# parameter not listed here fails the coverage test; add the parameter's source (and to `Things`).
ID_PARAMETERS: dict[str, Callable[[Things], str]] = {
    "order_id": lambda things: things.order_id,
    "employee_id": lambda things: things.employee_id,  # for the admin routes of DESIGN §12
    "verification_id": lambda things: things.verification_id,
}
# The code of each side's pending verification (made in the database by `_side`, as its HMAC).
KNOWN_CODE = "246810"


def _no_headers(_things: Things) -> dict[str, str]:
    return {}


@dataclass(frozen=True, kw_only=True)
class Probe:
    """How to call one route about a company's things."""

    role: Role  # who of the company rightly calls it about them: its employee, or its administrator
    json: Callable[[Things], dict[str, Any]] | None = None
    headers: Callable[[Things], dict[str, str]] = _no_headers


PROBES: dict[Route, Probe] = {
    ("GET", "/api/v1/orders/{order_id}"): Probe(role="employee"),
    ("GET", "/bestillinger/{order_id}"): Probe(role="employee"),  # where Mine lønnstrekk links a line
    # The other company's Idempotency-Key places an order of the caller's own, never returns theirs.
    ("POST", "/api/v1/orders"): Probe(
        role="employee",
        json=lambda things: {"product_code": things.order_product_code},
        headers=lambda things: {"Idempotency-Key": things.order_key},
    ),
    ("GET", "/api/v1/verifications/{verification_id}"): Probe(role="employee"),
    # The right code of the other company's verification confirms nothing of theirs.
    ("POST", "/api/v1/verifications/{verification_id}/confirm"): Probe(
        role="employee", json=lambda _things: {"code": KNOWN_CODE}
    ),
    # The administrator's API and pages about an employee (a change that changes nothing for the
    # company's own; the other company's must not even learn that the employee exists).
    ("PATCH", "/api/v1/admin/employees/{employee_id}"): Probe(
        role="admin", json=lambda _things: {"self_service_allowed": True}
    ),
    ("GET", "/admin/ansatte/{employee_id}"): Probe(role="admin"),
    # No form: the page asks to confirm a change of nothing.
    ("POST", "/admin/ansatte/{employee_id}"): Probe(role="admin"),
}

# Routes that name or change nothing of a company's, and why.
EXEMPT: dict[Route, str] = {
    ("POST", "/auth/dev-login"): "signs in by e-mail address (local mode only); names no company's thing",
    ("POST", "/auth/logout"): "ends the caller's own session",
    ("MOUNT", "/static"): "the portal's own script and style sheet",
    ("GET", "/problems/{slug}"): "the documentation of a problem type, the same for everyone",
    ("POST", "/api/v1/verifications"): "asks a code for the caller's own registered number; names nothing",
    ("POST", "/admin/retningslinjer"): "the page's form for PUT /api/v1/admin/policy (same use case)",
    ("PUT", "/api/v1/admin/policy"): (
        "replaces the caller's own company's policy, naming no other's (test_policy_api: Per's PUT "
        "leaves Demo Bedrift's policy and audit log as they were); GET is in the content walk"
    ),
    ("POST", "/bekreft-telefonnummer/send"): "the page's form for POST /api/v1/verifications (same use case)",
    ("POST", "/bekreft-telefonnummer/bekreft"): (
        "the page's form for the confirm route, probed above: the same use case, scoped to the caller"
    ),
    # A pay period is a month, the same for every company, not a company's thing: these always ask
    # the payroll-worker about the administrator's own company (test_deductions shows Per's close
    # and exports reach the payroll-worker with Fjord Logistikk's id only).
    ("POST", "/api/v1/admin/payroll/periods/{period}/close"): (
        "closes the administrator's own company's period; names no company's thing"
    ),
    ("GET", "/api/v1/admin/payroll/periods/{period}/export"): (
        "exports the administrator's own company's period; names no company's thing"
    ),
    ("POST", "/admin/lonnstrekk/lukk"): "the page's form for the close route (same use case, own company)",
}

# GET routes without parameters that the walk leaves to a test of their own.
WALKED_ELSEWHERE: dict[str, str] = {
    "/api/v1/events": "a stream: test_the_event_stream_carries_nothing_of_the_other_companys_orders",
}


def app_routes(app: FastAPI) -> set[Route]:
    routes: set[Route] = set()
    for context in iter_route_contexts(app.routes):
        path = context.path
        assert path is not None
        if isinstance(context.original_route, Mount):
            routes.add(("MOUNT", path))
            continue
        routes.update((method, path) for method in context.methods or () if method != "HEAD")
    return routes


def needs_probe(route: Route) -> bool:
    method, path = route
    return method == "MOUNT" or method in UNSAFE or PATH_PARAMETER.search(path) is not None


def walked_paths(app: FastAPI) -> list[str]:
    """The GET routes without path parameters, which the content walk calls as everyone."""
    return sorted(
        path
        for method, path in app_routes(app)
        if method == "GET" and not needs_probe((method, path)) and path not in WALKED_ELSEWHERE
    )


# ---- the two companies, signed in, with orders ------------------------------------------------


@dataclass
class Side:
    """One company as the tests see it: its employee and administrator signed in, what the
    employee ordered, and the strings only this company's data contains."""

    company: DemoCompany
    clients: dict[Role, httpx.AsyncClient]
    csrf: dict[Role, str]
    orders: list[dict[str, Any]]
    keys: list[str]
    verification_id: str = ""
    markers: set[str] = field(default_factory=set)

    def person(self, role: Role) -> DemoPerson:
        return PEOPLE[self.company.id, role]

    @property
    def things(self) -> Things:
        return Things(
            order_id=self.orders[0]["id"],
            order_product_code=self.orders[0]["product_code"],
            order_key=self.keys[0],
            employee_id=str(self.person("employee").id),
            verification_id=self.verification_id,
        )


async def _side(portal: Portal, company: DemoCompany, stack: contextlib.AsyncExitStack) -> Side:
    clients: dict[Role, httpx.AsyncClient] = {}
    csrf: dict[Role, str] = {}
    for role in ROLES:
        clients[role] = await stack.enter_async_context(portal.client())
        csrf[role] = await sign_in(clients[role], PEOPLE[company.id, role].email)
    side = Side(company=company, clients=clients, csrf=csrf, orders=[], keys=[])
    for product_code, details in ORDERS[company.id]:
        key = str(uuid.uuid4())
        response = await clients["employee"].post(
            "/api/v1/orders",
            json={
                "product_code": product_code,
                "details": details,
                **(await accepting(clients["employee"], product_code)),
            },
            headers={"X-CSRF-Token": csrf["employee"], "Idempotency-Key": key},
        )
        assert response.status_code == 202, response.text
        side.orders.append(response.json())
        side.keys.append(key)
        side.markers.update(details.values())
    me = (await clients["employee"].get("/api/v1/me")).json()
    side.markers.update(sim["id"] for sim in me["subscription"]["sim_cards"])
    side.markers.add(company.name)
    for person in company.people:
        side.markers.update({person.name, person.email, str(person.id)})
        if person.msisdn:
            side.markers.add(person.msisdn)
    side.verification_id = await _pending_verification(portal, side.person("employee"), company)
    side.markers.add(await _deduction(portal, side))
    side.markers.update(order["id"] for order in side.orders)
    side.markers.update(side.keys)
    return side


async def _pending_verification(portal: Portal, person: DemoPerson, company: DemoCompany) -> str:
    """A pending one-time code of the employee's whose code is KNOWN_CODE (written as its HMAC
    directly: the demo's employees with self-service have their numbers confirmed already)."""
    verification_id = uuid.uuid4()
    now = datetime.now(UTC)
    assert person.msisdn is not None
    async with portal.app.state.runtime.sessions() as session:
        session.add(
            Verification(
                id=verification_id,
                employee_id=person.id,
                company_id=company.id,
                msisdn=person.msisdn,
                code_hmac=code_hmac(portal.app.state.code_keeper.secret, verification_id, KNOWN_CODE),
                created_at=now,
                expires_at=now + timedelta(minutes=10),
                attempts=0,
                state="pending",
                delivery_status="requested",
            )
        )
        await session.commit()
    return str(verification_id)


async def _deduction(portal: Portal, side: Side) -> str:
    """A deduction line of the employee's for their first order, in this month's pay period (the
    administrator's Lønnstrekk shows it by default), as the payroll-worker's event records it;
    its id is the marker."""
    person = side.person("employee")
    line = deduction_line(
        side.orders[0]["id"],
        period=period_of(datetime.now(UTC)),
        employee_id=person.id,
        employee_number=person.employee_number,
        company_id=side.company.id,
    )
    async with portal.app.state.units.new() as uow:
        await record_deduction(uow, message_id=str(uuid.uuid4()), line=line, recorded_at=datetime.now(UTC))
    return str(line.line_id)


@contextlib.asynccontextmanager
async def two_companies(portal: Portal) -> AsyncIterator[tuple[Side, Side]]:
    async with contextlib.AsyncExitStack() as stack:
        yield await _side(portal, DEMO_BEDRIFT, stack), await _side(portal, FJORD_LOGISTIKK, stack)


def readable(response: httpx.Response) -> str:
    """The answer as someone would read it: JSON without escapes, HTML unescaped, and where a
    redirect points."""
    body = response.text
    if "json" in response.headers.get("content-type", "") and response.content:
        body = json.dumps(response.json(), ensure_ascii=False)
    elif "html" in response.headers.get("content-type", ""):
        body = html.unescape(body)
    return f"{response.headers.get('location', '')}\n{body}"


def seen_of(side: Side, text: str) -> set[str]:
    return {marker for marker in side.markers if marker in text}


async def company_rows(portal: Portal, company_id: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that is the company's or about its people, to show nobody else changed one."""
    employees = select(Employee.id).where(Employee.company_id == company_id)
    subscriptions = select(Subscription.id).where(Subscription.employee_id.in_(employees))
    queries = {
        "companies": select(Company.__table__).where(Company.id == company_id),
        "policies": select(Policy.__table__).where(Policy.company_id == company_id),
        "employees": select(Employee.__table__).where(Employee.company_id == company_id),
        "subscriptions": select(Subscription.__table__).where(Subscription.employee_id.in_(employees)),
        "sim_cards": select(SimCard.__table__).where(SimCard.subscription_id.in_(subscriptions)),
        "active_services": select(ActiveService.__table__).where(
            ActiveService.subscription_id.in_(subscriptions)
        ),
        "audit_log": select(AuditEntry.__table__).where(AuditEntry.company_id == company_id),
        "deductions": select(Deduction.__table__).where(
            or_(Deduction.company_id == company_id, Deduction.employee_id.in_(employees))
        ),
        "orders": select(Order.__table__).where(
            or_(
                Order.company_id == company_id,
                Order.employee_id.in_(employees),
                Order.subscription_id.in_(subscriptions),
            )
        ),
        "verifications": select(Verification.__table__).where(
            or_(Verification.company_id == company_id, Verification.employee_id.in_(employees))
        ),
    }
    async with portal.app.state.runtime.sessions() as session:
        return {
            name: sorted((tuple(row) for row in (await session.execute(query)).all()), key=repr)
            for name, query in queries.items()
        }


# ---- the tests ---------------------------------------------------------------------------------


def test_every_route_that_names_or_changes_a_thing_has_a_probe(tmp_path: Path) -> None:
    settings = PortalSettings(PORTAL_MODE="local", database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db")
    routes = app_routes(create_app(settings))

    missing = sorted(r for r in routes if needs_probe(r) and r not in PROBES and r not in EXEMPT)
    assert not missing, (
        f"routes with no isolation probe: {missing}. Add each to PROBES in {Path(__file__).name} "
        "(how to call it about a company's things, and who rightly may), or to EXEMPT with the "
        "reason it names and changes nothing of any company's."
    )
    stale = sorted((set(PROBES) | set(EXEMPT)) - routes)
    assert not stale, f"probes for routes the portal no longer has: {stale}"
    unknown = sorted(
        {name for _, path in PROBES for name in PATH_PARAMETER.findall(path)} - set(ID_PARAMETERS)
    )
    assert not unknown, (
        f"path parameters with no source of the other company's ids: {unknown}; add them to ID_PARAMETERS"
    )
    assert set(WALKED_ELSEWHERE) <= {path for method, path in routes if method == "GET"}


@pytest.mark.integration
async def test_no_page_or_api_answer_shows_anyone_anything_of_the_other_company(portal: Portal) -> None:
    paths = walked_paths(portal.app)
    assert {"/", "/abonnement", "/bestillinger", "/policy", "/kontakt", "/api/v1/me"} <= set(paths)
    assert {"/lonnstrekk", "/api/v1/deductions", "/admin/lonnstrekk"} <= set(paths)
    async with two_companies(portal) as (demo, fjord), portal.client() as anonymous:
        leaks: list[str] = []
        shown: dict[uuid.UUID, set[str]] = {demo.company.id: set(), fjord.company.id: set()}
        for path in paths:
            public = readable(await anonymous.get(path))
            for side, other in ((demo, fjord), (fjord, demo)):
                for role, client in side.clients.items():
                    text = readable(await client.get(path))
                    shown[side.company.id] |= seen_of(side, text)
                    leaks += [
                        f"{path} shows {side.person(role).name} {marker!r} of {other.company.name}"
                        for marker in sorted(seen_of(other, text) - seen_of(other, public))
                    ]
    assert not leaks, "\n".join(leaks)
    # The walk reached real data: each company's people were shown their own, all but the
    # Idempotency-Keys (never shown) and Håkon's (not signed in; nobody asks about him).
    hakon = {HAKON.name, HAKON.email, str(HAKON.id), HAKON.msisdn}
    for side in (demo, fjord):
        assert side.markers - shown[side.company.id] - set(side.keys) - hakon == set()


@pytest.mark.integration
@pytest.mark.parametrize(
    "asking", ["Fjord Logistikk asks about Demo Bedrift", "Demo Bedrift asks about Fjord"]
)
async def test_no_route_answers_one_company_about_the_other_companys_things(
    portal: Portal, asking: str
) -> None:
    async with two_companies(portal) as (demo, fjord):
        asker, target = (fjord, demo) if asking.startswith("Fjord") else (demo, fjord)
        before = await company_rows(portal, target.company.id)
        problems: list[str] = []
        for route, probe in sorted(PROBES.items()):
            for role in ROLES:
                who = f"{route} as {asker.person(role).name}"
                made_up = target.things.made_up()
                theirs = await call(asker, role, route, probe, target.things)
                shape = answer_shape(theirs, target.things)
                # The ids asked about are blanked out: the asker knew them already.
                if leaked := sorted(seen_of(target, shape[2])):
                    problems.append(f"{who}: shows {leaked}")
                if PATH_PARAMETER.search(route[1]):
                    if shape != answer_shape(await call(asker, role, route, probe, made_up), made_up):
                        problems.append(f"{who}: {shape} differs from the answer for a made-up id")
                    if role == probe.role and theirs.status_code != 404:
                        problems.append(f"{who}: {theirs.status_code}, not 404")
        assert await company_rows(portal, target.company.id) == before, "the asker changed the target's data"
        for route, probe in sorted(PROBES.items()):
            own = await call(target, probe.role, route, probe, target.things)
            if own.status_code >= 400:
                problems.append(f"{route} fails its own company's {probe.role}: {own.status_code} {own.text}")
    assert not problems, "\n".join(problems)


async def call(side: Side, role: Role, route: Route, probe: Probe, things: Things) -> httpx.Response:
    method, path = route
    url = PATH_PARAMETER.sub(lambda m: ID_PARAMETERS[m.group(1)](things), path)
    headers = probe.headers(things)
    if method in UNSAFE:
        headers["X-CSRF-Token"] = side.csrf[role]
    body = probe.json(things) if probe.json is not None else None
    return await side.clients[role].request(method, url, json=body, headers=headers)


def answer_shape(response: httpx.Response, things: Things) -> tuple[int, str, str]:
    """Status, type and text of an answer, with the ids it was asked about blanked out."""
    text = readable(response)
    for value in things.ids():
        text = text.replace(value, "<id>")
    return response.status_code, response.headers.get("content-type", ""), text


@pytest.mark.integration
async def test_each_company_orders_under_its_own_policy(portal: Portal) -> None:
    async with portal.client() as kari, portal.client() as siri:
        kari_csrf, siri_csrf = await sign_in(kari, KARI.email), await sign_in(siri, SIRI.email)
        kari_pays = {i["code"]: i for i in (await kari.get("/api/v1/catalog")).json()}
        siri_pays = {i["code"]: i for i in (await siri.get("/api/v1/catalog")).json()}
        kari_policy = Html((await kari.get("/policy")).text)
        siri_policy = Html((await siri.get("/policy")).text)
        placed = {
            (name, code): (
                await client.post(
                    "/api/v1/orders",
                    json={"product_code": code, **(await accepting(client, code))},
                    headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
                )
            )
            for name, client, csrf in (("kari", kari, kari_csrf), ("siri", siri, siri_csrf))
            for code in ("datakort", "min-sky-25gb")
        }

    def pays(catalog: dict[str, dict[str, Any]], code: str) -> int | None:
        return catalog[code]["employee_pays_ore"] if catalog[code]["allowed"] else None

    codes = ("ekstra-data-15gb", "min-sky-25gb", "tvilling", "datakort", "bedrift-total-d", "bedrift-total-e")
    assert {c: pays(kari_pays, c) for c in codes} == {
        "ekstra-data-15gb": 14_900,
        "min-sky-25gb": 2_450,
        "tvilling": 0,
        "datakort": None,
        "bedrift-total-d": 5_000,
        "bedrift-total-e": 10_000,
    }
    assert {c: pays(siri_pays, c) for c in codes} == {
        "ekstra-data-15gb": 7_450,
        "min-sky-25gb": None,
        "tvilling": 6_900,
        "datakort": 0,
        "bedrift-total-d": 0,
        "bedrift-total-e": 5_000,
    }
    ceiling = "Arbeidsgiver dekker abonnement opp til og med {}"
    assert ceiling.format("Bedrift Total C (10 GB)") in kari_policy.text
    assert ceiling.format("Bedrift Total D (25 GB)") in siri_policy.text
    assert policy_lines(kari_policy)["Datakort"] == ["69,00 kr", "Ikke tillatt"]
    assert policy_lines(siri_policy)["Datakort"] == ["69,00 kr", "Arbeidsgiver"]
    assert policy_lines(siri_policy)["Tvilling"] == ["69,00 kr", "Du (lønnstrekk 69,00 kr per måned)"]
    assert "Fjord Logistikk AS" in siri_policy.text
    assert "Demo Bedrift AS" not in siri_policy.text
    assert {k: r.status_code for k, r in placed.items()} == {
        ("kari", "datakort"): 403,
        ("kari", "min-sky-25gb"): 202,
        ("siri", "datakort"): 202,
        ("siri", "min-sky-25gb"): 403,
    }
    datakort = placed[("siri", "datakort")].json()
    assert (datakort["msisdn"], datakort["employee_charge_ore"]) == (SIRI.msisdn, 0)
    async with portal.app.state.runtime.sessions() as session:
        order = await session.get(Order, uuid.UUID(datakort["id"]))
        assert order is not None
        assert (order.company_id, order.employee_id) == (FJORD_LOGISTIKK.id, SIRI.id)


def policy_lines(page: Html) -> dict[str, list[str]]:
    return {c[0]: c[1:] for tr in page.find("tr") if (c := [e.text for e in page.find(within=tr)])}


def _siris(order: dict[str, Any]) -> OrderSnapshot:
    return snapshot(order, SIRI.id).model_copy(
        update={"company_id": FJORD_LOGISTIKK.id, "employee_number": SIRI.employee_number}
    )


@pytest.mark.integration
async def test_the_event_stream_carries_nothing_of_the_other_companys_orders(portal: Portal) -> None:
    # Each round publishes the other company's news before a stream's own: a stream that carried
    # anything of the other company's would show it first.
    async with (
        served(portal.app) as base_url,
        httpx.AsyncClient(base_url=base_url) as kari,
        httpx.AsyncClient(base_url=base_url) as siri,
    ):
        kari_csrf, siri_csrf = await sign_in(kari, KARI.email), await sign_in(siri, SIRI.email)
        async with event_stream(kari) as kari_events, event_stream(siri) as siri_events:
            k1, k2, k3 = [
                await place(kari, kari_csrf, c) for c in ("nettvern", "tvilling", "ekstra-data-1gb")
            ]
            s1, s2 = [await place(siri, siri_csrf, c) for c in ("nettvern", "datakort")]
            names = {
                k1["id"]: "Kari 1",
                k2["id"]: "Kari 2",
                k3["id"]: "Kari 3",
                s1["id"]: "Siri 1",
                s2["id"]: "Siri 2",
            }
            now = datetime.now(UTC)

            def submitted(order: dict[str, Any]) -> Envelope[Any]:
                return worker_event(
                    OrderSubmitted(order_id=uuid.UUID(order["id"]), carrier_order_id="c", submitted_at=now)
                )

            def completed(order: OrderSnapshot) -> Envelope[Any]:
                return worker_event(OrderCompleted(order=order, carrier_order_id="c", completed_at=now))

            async def seen(events: EventStream) -> tuple[str, str]:
                event = await events.next_order_event()
                return names.get(event["order_id"], event["order_id"]), event["status"]

            await publish(portal.amqp_url, submitted(k1), submitted(s1))
            assert await seen(siri_events) == ("Siri 1", "submitted")
            assert await seen(kari_events) == ("Kari 1", "submitted")

            await publish(portal.amqp_url, completed(_siris(s1)), completed(snapshot(k1)))
            assert await seen(kari_events) == ("Kari 1", "completed")
            assert await seen(siri_events) == ("Siri 1", "completed")

            await publish(portal.amqp_url, completed(snapshot(k2)), completed(_siris(s2)))
            assert await seen(siri_events) == ("Siri 2", "completed")
            assert await seen(kari_events) == ("Kari 2", "completed")

            await publish(portal.amqp_url, completed(snapshot(k3)))
            assert await seen(kari_events) == ("Kari 3", "completed")


async def place(client: httpx.AsyncClient, csrf: str, product_code: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/orders",
        json={"product_code": product_code, **(await accepting(client, product_code))},
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    order: dict[str, Any] = response.json()
    return order
