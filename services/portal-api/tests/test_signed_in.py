"""Who is signed in is worked out in one place (deps.signed_in) for the API, the pages and the event
stream; each answers a visitor without a session, or with a session naming nobody on file, in
its own way: 401 not-signed-in for the API and the stream, the sign-in page for a page."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from mport_shared.db import create_engine, session_factory
from portal_api.deps import signed_in
from portal_api.main import create_app
from portal_api.models import Employee
from portal_api.seed import DEMO_COMPANY_ID
from portal_api.settings import PortalSettings
from sqlalchemy import delete

from .conftest import Portal, sign_in

# Routes anyone may call: signing in and out, the sign-in page, documentation, operations.
PUBLIC = {
    "/auth/dev-login", "/auth/logout", "/auth/oidc/login", "/auth/oidc/callback", "/logg-inn",
    "/problems", "/problems/{slug}", "/healthz", "/readyz", "/metrics",
}  # fmt: skip
NOT_SIGNED_IN = "https://mport.no/problems/not-signed-in"


def _calls(dependant: Dependant) -> list[Callable[..., Any] | None]:
    calls = []
    for sub in dependant.dependencies:
        calls += [sub.call, *_calls(sub)]
    return calls


def test_every_route_that_needs_a_signed_in_employee_asks_the_one_dependency() -> None:
    app = create_app(PortalSettings(database_url="sqlite+aiosqlite:///:memory:", PORTAL_MODE="local"))  # type: ignore[call-arg]
    routes = [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]
    guarded = {c.path for c in routes if signed_in in _calls(c.original_route.dependant)}
    assert {"/api/v1/me", "/api/v1/orders", "/api/v1/events", "/abonnement", "/"} <= guarded
    assert {c.path for c in routes} - guarded == PUBLIC


async def _nobody_on_file(portal: Portal, client: httpx.AsyncClient) -> str:
    """Sign in as an employee, then remove the employee: the session names nobody on file."""
    engine = create_engine(portal.database_url)
    try:
        async with session_factory(engine).begin() as session:
            person = Employee(
                id=uuid.uuid4(), company_id=DEMO_COMPANY_ID, email="gone@demo.no", name="Gone",
                employee_number="9999", self_service_active=True,
            )  # fmt: skip
            session.add(person)
        csrf = await sign_in(client, "gone@demo.no")
        async with session_factory(engine).begin() as session:
            await session.execute(delete(Employee).where(Employee.id == person.id))
    finally:
        await engine.dispose()
    return csrf


@pytest.mark.integration
@pytest.mark.parametrize("session", ["none", "nobody on file"])
async def test_api_pages_and_stream_each_refuse_a_visitor_not_signed_in_in_their_own_way(
    portal: Portal, session: str
) -> None:
    async with portal.client() as client:
        csrf = await _nobody_on_file(portal, client) if session != "none" else ""
        me = await client.get("/api/v1/me")
        catalog = await client.get("/api/v1/catalog")
        placed = await client.post(
            "/api/v1/orders",
            json={"product_code": "nettvern"},
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": "k"},
        )
        stream = await client.get("/api/v1/events")
        page = await client.get("/abonnement?lang=en", headers={"Accept": "text/html"})
    for answer in (me, catalog, stream) + ((placed,) if csrf else ()):
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == NOT_SIGNED_IN
    assert page.status_code == 303
    assert page.headers["location"] == "/logg-inn?neste=/abonnement%3Flang%3Den"
