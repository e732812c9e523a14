"""Hardening on real PostgreSQL and RabbitMQ: caching and HSTS headers, what production does not
serve, rate limits answered 429 with Retry-After, and the cap on one employee's event streams."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from mport_shared.devstack import free_port
from mport_shared.testing import wait_for
from portal_api.live import LiveHub
from portal_api.seed import HAKON, INGRID, KARI

from .conftest import MakePortal, Portal, accepting, sign_in
from .test_pages import event_stream, served

pytestmark = pytest.mark.integration

PRODUCTION = {"PORTAL_MODE": "production", "SESSION_SECRET": "s" * 40, "VERIFICATION_CODE_SECRET": "v" * 40}
HSTS = "max-age=31536000; includeSubDomains"


async def order(client: httpx.AsyncClient, csrf: str, product: str = "ekstra-data-1gb") -> httpx.Response:
    return await client.post(
        "/api/v1/orders",
        json={"product_code": product, **(await accepting(client, product))},
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
    )


def assert_rate_limited(response: httpx.Response, *, within_s: int) -> int:
    """A 429 problem with an honest Retry-After; returns it."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://mport.no/problems/rate-limited"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= within_s
    assert problem["retry_after_s"] == retry_after
    assert f"Try again in {retry_after} s" in problem["detail"]
    return retry_after


# ---- headers -------------------------------------------------------------------------------------


async def test_answers_with_personal_data_are_not_cached_and_production_adds_hsts(
    make_portal: MakePortal,
) -> None:
    local = await make_portal()
    async with local.client() as client:
        csrf = await sign_in(client, KARI.email)
        signed_in = [
            await client.get("/api/v1/me"),
            await client.get("/api/v1/catalog"),
            await client.get("/api/v1/orders"),
            await order(client, csrf),
            await client.get("/abonnement"),
            await client.get("/bestillinger"),
        ]
        static = await client.get("/static/portal.css")
    for response in signed_in:
        assert response.status_code in (200, 202), (response.request.url, response.text)
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in response.headers, "no HSTS on a local http portal"
    assert static.status_code == 200
    assert "no-store" not in static.headers.get("cache-control", "")

    production = await make_portal(**PRODUCTION)
    async with production.client() as client:
        answers = [
            await client.get("/api/v1/me"),  # 401 problem
            await client.get("/api/v1/orders"),
            await client.get("/abonnement"),  # 303 to the sign-in page
            await client.get("/logg-inn"),
            await client.post("/api/v1/orders", content=b"x" * 70_000),  # 413 from the body limit
            await client.get("/healthz"),
        ]
        static = await client.get("/static/portal.css")
    assert [r.status_code for r in answers] == [401, 401, 303, 200, 413, 200]
    for response in answers:
        assert response.headers["strict-transport-security"] == HSTS, response.request.url
        assert response.headers["cache-control"] == "no-store", response.request.url
    assert static.headers["strict-transport-security"] == HSTS
    assert "no-store" not in static.headers.get("cache-control", "")


# ---- what production does not serve -------------------------------------------------------------


async def test_production_serves_no_api_docs_openapi_or_metrics_on_the_portals_port(
    make_portal: MakePortal,
) -> None:
    local = await make_portal()
    async with local.client() as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
            assert (await client.get(path)).status_code == 200, path
    production = await make_portal(**PRODUCTION)
    async with production.client() as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/metrics", "/docs/oauth2-redirect"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json"
        assert (await client.get("/healthz")).status_code == 200


async def test_in_production_openapi_is_served_when_configured_and_metrics_on_their_own_port(
    make_portal: MakePortal,
) -> None:
    metrics_port = free_port()
    portal = await make_portal(**PRODUCTION, SERVE_OPENAPI="true", METRICS_PORT=str(metrics_port))
    async with portal.client() as client:
        openapi = await client.get("/openapi.json")
        assert openapi.status_code == 200
        assert "/api/v1/orders" in openapi.json()["paths"]
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/metrics")).status_code == 404
    async with httpx.AsyncClient() as scraper:
        metrics = await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert metrics.status_code == 200
    assert "mport_outbox_backlog" in metrics.text


# ---- rate limits ---------------------------------------------------------------------------------


async def test_orders_over_the_limit_get_429_with_retry_after_per_employee(make_portal: MakePortal) -> None:
    portal = await make_portal(ORDER_RATE_LIMIT="3/minute")
    async with portal.client() as kari, portal.client() as hakon:
        csrf = await sign_in(kari, KARI.email)
        accepted = [await order(kari, csrf) for _ in range(3)]
        refused = await order(kari, csrf)
        hakon_csrf = await sign_in(hakon, HAKON.email)
        hakons = await order(hakon, hakon_csrf)
        listed = (await kari.get("/api/v1/orders")).json()
    assert [r.status_code for r in accepted] == [202, 202, 202]
    assert_rate_limited(refused, within_s=60)
    assert "at most 3 per minute" in refused.json()["detail"]
    assert len(listed) == 3, "the refused order is not stored"
    assert hakons.status_code == 403, "Kari's count is hers: Håkon is refused only for his own reason"


async def test_in_local_mode_orders_are_not_rate_limited_unless_set(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI.email)
        answers = await asyncio.gather(*(order(client, csrf) for _ in range(25)))
    assert [r.status_code for r in answers] == [202] * 25


@pytest.mark.parametrize("path", ["/auth/dev-login", "/auth/oidc/login", "/auth/oidc/callback"])
async def test_sign_in_over_the_limit_gets_429_with_retry_after_per_route(
    make_portal: MakePortal, path: str
) -> None:
    portal = await make_portal(SIGN_IN_RATE_LIMIT="2/minute")

    async def attempt(client: httpx.AsyncClient, route: str, **headers: str) -> httpx.Response:
        if route == "/auth/dev-login":
            return await client.post(route, data={"email": KARI.email}, headers=headers)
        return await client.get(route, headers=headers)

    async with portal.client() as client:
        allowed = [await attempt(client, path) for _ in range(2)]
        refused = await attempt(client, path)
        page = await attempt(client, path, Accept="text/html")
        routes = [r for r in ("/auth/dev-login", "/auth/oidc/login") if r != path]
        others = [await attempt(client, route) for route in routes]
    assert all(r.status_code != 429 for r in allowed), [r.status_code for r in allowed]
    assert_rate_limited(refused, within_s=60)
    assert "sign-in attempts" in refused.json()["detail"]
    # A browser gets a page in its language, with the same Retry-After.
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert 1 <= int(page.headers["retry-after"]) <= 60
    assert "For mange forsøk" in page.text
    assert "innloggingsforsøk fra adressen din" in page.text
    assert all(r.status_code != 429 for r in others), "each sign-in route counts on its own"


async def test_in_production_sign_in_is_rate_limited_by_default(make_portal: MakePortal) -> None:
    portal = await make_portal(**PRODUCTION)
    async with portal.client() as client:
        answers = [await client.get("/auth/oidc/login") for _ in range(31)]
    assert {r.status_code for r in answers[:30]} == {400}  # not set up: the page says so
    assert_rate_limited(answers[30], within_s=60)


# ---- the cap on event streams --------------------------------------------------------------------


@pytest.fixture
async def capped(make_portal: MakePortal) -> AsyncIterator[tuple[Portal, str]]:
    portal = await make_portal(MAX_EVENT_STREAMS_PER_EMPLOYEE="2")
    async with served(portal.app) as url:
        yield portal, url


async def test_one_employees_event_streams_are_capped_and_a_closed_one_frees_its_place(
    capped: tuple[Portal, str],
) -> None:
    portal, url = capped
    hub: LiveHub = portal.app.state.live_hub
    async with httpx.AsyncClient(base_url=url) as kari, httpx.AsyncClient(base_url=url) as ingrid:
        await sign_in(kari, KARI.email)
        await sign_in(ingrid, INGRID.email)
        async with event_stream(kari), event_stream(kari):
            refused = await kari.get("/api/v1/events", headers={"Accept": "text/event-stream"})
            async with event_stream(ingrid):  # the cap is per employee
                pass
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "https://mport.no/problems/too-many-event-streams"
        assert "2 live status streams" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) > 0
        await wait_for(lambda: _no_streams(hub), timeout_s=10, what="the closed streams to free their places")
        async with event_stream(kari), event_stream(kari):
            assert hub.open_streams(KARI.id) == 2


async def _no_streams(hub: LiveHub) -> bool:
    return hub.open_streams(KARI.id) == 0
