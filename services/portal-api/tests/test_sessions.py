"""Sessions that end: Logg ut ends every copy of the cookie, idle and absolute timeouts (a test
clock), ending all of one employee's sessions, a new session id at sign-in, only hashes stored,
and no round trip of its own on a request."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import structlog
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from mport_shared.db import create_engine, session_factory
from mport_shared.testing import wait_for
from portal_api import live
from portal_api.auth.sessions import end_sessions_of, purge_expired, purge_sessions, session_alive
from portal_api.deps import signed_in
from portal_api.models import WebSession
from portal_api.seed import HAKON, KARI
from sqlalchemy import event, func, select

from .conftest import FakeClock, MakePortal, Portal, accepting, place_order, sign_in
from .test_pages import Html, browser_sign_in, event_stream, served

pytestmark = pytest.mark.integration

COOKIE = "mport_session"
NOT_SIGNED_IN = "https://mport.no/problems/not-signed-in"
SESSION_EXPIRED = "https://mport.no/problems/session-expired"


def copy_of(client: httpx.AsyncClient, portal: Portal) -> httpx.AsyncClient:
    """Another client holding the same cookies: a copied or stolen cookie, another tab."""
    other = portal.client()
    other.cookies = httpx.Cookies(client.cookies)
    return other


def cookie_session(client: httpx.AsyncClient) -> dict[str, Any]:
    """What the signed session cookie holds (base64 JSON, then timestamp and signature)."""
    payload = client.cookies[COOKIE].split(".")[0]
    data: dict[str, Any] = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def session_token(client: httpx.AsyncClient) -> str:
    token: str = cookie_session(client)["sid"]
    return token


async def stored_sessions(portal: Portal) -> list[WebSession]:
    engine = create_engine(portal.database_url)
    try:
        async with session_factory(engine)() as db:
            return list((await db.scalars(select(WebSession).order_by(WebSession.created_at))).all())
    finally:
        await engine.dispose()


@contextmanager
def statements(portal: Portal) -> Iterator[list[str]]:
    """The SQL the portal sends while the block runs, minus the outbox relay's own."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        relay = ("FROM outbox", "UPDATE outbox", "pg_try_advisory")
        if not any(part in statement for part in relay):
            seen.append(" ".join(statement.split()))

    engine = portal.app.state.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def timed_portal(make_portal: MakePortal, clock: FakeClock) -> Portal:
    return await make_portal(clock=clock)


async def test_after_logg_ut_every_copy_of_the_cookie_is_refused(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await browser_sign_in(client, KARI.email)
        async with copy_of(client, portal) as copy:
            assert (await copy.get("/api/v1/me")).status_code == 200  # the copy is as good, until ...

            signed_out = await client.post("/auth/logout", data={"csrf_token": csrf})
            assert signed_out.status_code == 303
            assert signed_out.headers["location"] == "/logg-inn"
            assert "Du er logget ut." in Html((await client.get("/logg-inn")).text).text

            me = await copy.get("/api/v1/me")
            assert me.status_code == 401
            assert me.headers["content-type"] == "application/problem+json"
            assert me.json()["type"] == NOT_SIGNED_IN
            assert me.json()["reason"] == "ended"
            assert "This session has ended" in me.json()["detail"]
            order = await copy.post(
                "/api/v1/orders",
                json={"product_code": "ekstra-data-1gb"},
                headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert order.status_code == 401
            page = await copy.get("/abonnement")
            assert page.status_code == 303
            assert page.headers["location"] == "/logg-inn?neste=/abonnement"
    assert await stored_sessions(portal) == []


def _calls(dependant: Dependant) -> list[Callable[..., Any] | None]:
    calls = []
    for sub in dependant.dependencies:
        calls += [sub.call, *_calls(sub)]
    return calls


async def test_every_route_for_the_signed_in_refuses_a_session_that_has_ended(portal: Portal) -> None:
    # Each route that asks who is signed in must also find out whether that session is still on,
    # through the unit of work: in the employee's query, or by reading the orders.
    routes = [
        (c.path, method)
        for c in iter_route_contexts(portal.app.routes)
        if isinstance(c.original_route, APIRoute) and signed_in in _calls(c.original_route.dependant)
        for method in sorted(c.original_route.methods)
    ]
    assert len(routes) >= 12
    async with portal.client() as client:
        csrf = await sign_in(client, KARI.email)
        ended = httpx.Cookies(client.cookies)
        await client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    for path, method in routes:
        async with portal.client() as dead:
            dead.cookies = httpx.Cookies(ended)
            answer = await dead.request(
                method,
                path.replace("{order_id}", str(uuid.uuid4()))
                .replace("{verification_id}", str(uuid.uuid4()))
                .replace("{employee_id}", str(HAKON.id))
                .replace("{period}", "2026-12"),
                json={"product_code": "nettvern", "code": "123456"}
                if method == "POST"
                else {}
                if method in ("PATCH", "PUT")
                else None,
                headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4()), "Accept": "text/html"},
            )
        if path.startswith("/api/"):
            assert answer.status_code == 401, (method, path, answer.text)
            assert (answer.json()["type"], answer.json()["reason"]) == (NOT_SIGNED_IN, "ended"), path
        else:
            assert answer.status_code == 303, (method, path)
            assert answer.headers["location"].split("?")[0] == "/logg-inn", path


async def test_an_old_cookie_replayed_after_logg_ut_is_refused_though_the_browser_forgot_it(
    portal: Portal,
) -> None:
    # The browser that signed out is told to drop its sid; one kept by hand (or by an attacker) is
    # refused all the same, every time it is sent.
    async with portal.client() as client:
        csrf = await sign_in(client, KARI.email)
        kept = client.cookies[COOKIE]
        await client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    for _ in range(2):
        async with portal.client() as replay:
            replay.cookies.set(COOKIE, kept)
            assert (await replay.get("/api/v1/me")).status_code == 401
            assert (await replay.get("/api/v1/orders")).status_code == 401


async def test_a_session_ends_after_the_idle_timeout(timed_portal: Portal, clock: FakeClock) -> None:
    async with timed_portal.client() as client:
        await browser_sign_in(client, KARI.email)
        for _ in range(3):  # each request within 30 minutes of the last keeps it alive
            clock.advance(minutes=29)
            assert (await client.get("/api/v1/me")).status_code == 200
        clock.advance(minutes=30)
        me = await client.get("/api/v1/me")
        assert me.status_code == 401
        assert "ended after 30 minutes without activity" in me.json()["detail"]
        assert (me.json()["type"], me.json()["reason"]) == (SESSION_EXPIRED, "idle")
        sign_in_page = await client.get("/logg-inn")
        assert "Du ble logget ut fordi du ikke har vært aktiv på en stund." in Html(sign_in_page.text).text
        # Said once: the next visit to the sign-in page has no notice.
        assert "ikke har vært aktiv" not in Html((await client.get("/logg-inn")).text).text
    assert await stored_sessions(timed_portal) == []


async def test_pages_send_an_idle_session_to_sign_in(timed_portal: Portal, clock: FakeClock) -> None:
    async with timed_portal.client() as client:
        await browser_sign_in(client, KARI.email)
        assert (await client.get("/bestillinger")).status_code == 200
        clock.advance(minutes=31)
        page = await client.get("/bestillinger")
        assert page.status_code == 303
        assert page.headers["location"] == "/logg-inn?neste=/bestillinger"


async def test_a_session_ends_at_its_absolute_lifetime_however_busy(
    timed_portal: Portal, clock: FakeClock
) -> None:
    async with timed_portal.client() as client:
        await sign_in(client, KARI.email)
        for _ in range(23):  # every 20 minutes for 7 h 40 min
            clock.advance(minutes=20)
            assert (await client.get("/api/v1/me")).status_code == 200
        clock.advance(minutes=20)  # 8 hours after sign-in
        me = await client.get("/api/v1/me")
        assert me.status_code == 401
        assert "a sign-in lasts at most 8 hours" in me.json()["detail"]
        assert (me.json()["type"], me.json()["reason"]) == (SESSION_EXPIRED, "max_age")
        await sign_in(client, KARI.email)  # a new sign-in starts a new 8 hours
        assert (await client.get("/api/v1/me")).status_code == 200


async def test_the_timeouts_are_settings(make_portal: MakePortal, clock: FakeClock) -> None:
    portal = await make_portal(clock=clock, SESSION_IDLE_TIMEOUT_S="300", SESSION_MAX_AGE_S="900")
    async with portal.client() as client:
        await sign_in(client, KARI.email)
        clock.advance(minutes=4)
        assert (await client.get("/api/v1/me")).status_code == 200
        clock.advance(minutes=5)
        assert "after 5 minutes without activity" in (await client.get("/api/v1/me")).json()["detail"]
        await sign_in(client, KARI.email)
        for _ in range(3):
            clock.advance(minutes=4)
            assert (await client.get("/api/v1/me")).status_code == 200
        clock.advance(minutes=3)
        assert "at most 0.25 hours" in (await client.get("/api/v1/me")).json()["detail"]


async def test_a_request_checks_the_session_in_the_employees_query_and_writes_at_most_once_a_minute(
    timed_portal: Portal, clock: FakeClock
) -> None:
    async with timed_portal.client() as client:
        csrf = await sign_in(client, KARI.email)
        await place_order(client, csrf, "ekstra-data-1gb")  # the product catalog is cached from now
        body = {"product_code": "ekstra-data-1gb", **(await accepting(client, "ekstra-data-1gb"))}
        with statements(timed_portal) as sent:
            for _ in range(2):
                clock.advance(seconds=20)
                placed = await client.post(
                    "/api/v1/orders",
                    json=body,
                    headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
                )
                assert placed.status_code == 202, placed.text
        # Each order: the employee with the session (one query), then the consent, the order and
        # its event (one statement).
        assert [s.split()[0] for s in sent] == ["SELECT", "WITH"] * 2, sent
        assert all("JOIN web_sessions" in s for s in sent[::2])
        assert not any("web_sessions" in s for i, s in enumerate(sent) if i % 2)

        with statements(timed_portal) as sent:
            clock.advance(seconds=21)  # a minute since sign-in: last_seen_at moves on, once
            await place_order(client, csrf, "ekstra-data-1gb")
            await place_order(client, csrf, "ekstra-data-1gb")
        assert sum(s.startswith("UPDATE web_sessions SET last_seen_at") for s in sent) == 1, sent
    [stored] = await stored_sessions(timed_portal)
    assert stored.last_seen_at == clock.now


async def test_ending_all_of_one_employees_sessions(portal: Portal) -> None:
    async with portal.client() as phone, portal.client() as laptop, portal.client() as hakon:
        await sign_in(phone, KARI.email)
        await sign_in(laptop, KARI.email)
        await sign_in(hakon, HAKON.email)
        engine = create_engine(portal.database_url)
        try:
            async with session_factory(engine).begin() as db:  # the administrator's change
                assert await end_sessions_of(db, KARI.id) == 2
        finally:
            await engine.dispose()
        for client in (phone, laptop):
            me = await client.get("/api/v1/me")
            assert me.status_code == 401
            assert "ended by the mPort administrator" in me.json()["detail"]
        assert (await hakon.get("/api/v1/me")).status_code == 200
    assert [s.employee_id for s in await stored_sessions(portal)] == [HAKON.id]


async def test_sign_in_starts_a_new_session_and_ends_the_one_before(portal: Portal) -> None:
    async with portal.client() as client:
        anonymous = Html((await client.get("/logg-inn")).text).one("meta", name="csrf-token").attrs["content"]
        assert "sid" not in cookie_session(client)  # no session before sign-in
        await browser_sign_in(client, KARI.email)
        first = session_token(client)
        assert client.cookies["csrftoken"] != anonymous  # the CSRF token is new too
        async with copy_of(client, portal) as earlier:
            await browser_sign_in(client, HAKON.email)  # someone else at the same computer
            assert session_token(client) != first
            assert (await client.get("/api/v1/me")).json()["email"] == HAKON.email
            assert (await earlier.get("/api/v1/me")).status_code == 401  # Kari's session ended
    assert [s.employee_id for s in await stored_sessions(portal)] == [HAKON.id]


async def test_a_session_planted_before_sign_in_signs_nobody_in(portal: Portal) -> None:
    # Fixation: an attacker gets a victim's browser to carry the attacker's session cookie; when the
    # victim signs in, the attacker's copy must not become the victim's session.
    async with portal.client() as attacker:
        await sign_in(attacker, HAKON.email)
        async with copy_of(attacker, portal) as victim:
            await sign_in(victim, KARI.email)
            assert (await victim.get("/api/v1/me")).json()["email"] == KARI.email
            assert session_token(victim) != session_token(attacker)
        assert (await attacker.get("/api/v1/me")).status_code == 401


async def test_a_burst_of_sign_ins_cannot_take_the_whole_connection_pool(make_portal: MakePortal) -> None:
    # A sign-in writes its session with the connection that read the employee: one taking a second
    # while holding the first would, with every connection held, wait for itself (30 s, then 500).
    portal = await make_portal(database_pool_size=2)
    clients = [portal.client() for _ in range(6)]
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(
                *(sign_in(c, email) for c, email in zip(clients, [KARI.email, HAKON.email] * 3, strict=True))
            )
        for client in clients:
            assert (await client.get("/api/v1/me")).status_code == 200
    finally:
        for client in clients:
            await client.aclose()


async def test_only_a_hash_of_the_token_is_stored_and_no_token_is_logged(portal: Portal) -> None:
    with structlog.testing.capture_logs() as lines:
        async with portal.client() as client:
            csrf = await sign_in(client, KARI.email)
            token = session_token(client)
            async with copy_of(client, portal) as replay:
                await client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
                assert (await replay.get("/api/v1/me")).status_code == 401
            await sign_in(client, KARI.email)
    [stored] = await stored_sessions(portal)
    assert stored.token_hash != token.encode()
    assert stored.token_hash != hashlib.sha256(session_token(client).encode()).hexdigest().encode()
    assert stored.token_hash == hashlib.sha256(session_token(client).encode()).digest()
    refused = [line for line in lines if line["event"] == "session refused"]
    assert [line["reason"] for line in refused] == ["ended"]
    logged = json.dumps(lines, default=str)
    assert token not in logged
    assert session_token(client) not in logged
    assert hashlib.sha256(token.encode()).hexdigest() not in logged


async def test_ended_sessions_are_purged(timed_portal: Portal, clock: FakeClock) -> None:
    async with timed_portal.client() as idle, timed_portal.client() as busy:
        await sign_in(idle, KARI.email)
        clock.advance(minutes=20)
        await sign_in(busy, HAKON.email)
        clock.advance(minutes=15)  # idle's 35 minutes old, busy's 15
    engine = create_engine(timed_portal.database_url)
    try:
        async with session_factory(engine).begin() as db:
            assert await purge_expired(db, policy=timed_portal.app.state.session_policy, now=clock()) == 1
        async with session_factory(engine)() as db:
            assert await db.scalar(select(func.count()).select_from(WebSession)) == 1
    finally:
        await engine.dispose()


async def test_the_portal_keeps_purging_ended_sessions_after_the_database_was_away(
    timed_portal: Portal, clock: FakeClock
) -> None:
    async with timed_portal.client() as client:
        await sign_in(client, KARI.email)
    clock.advance(minutes=31)
    engine = create_engine(timed_portal.database_url)
    sessions = session_factory(engine)
    calls = 0

    def flaky() -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("the database is restarting")
        return sessions.begin()

    async def purged() -> bool:
        async with sessions() as db:
            return await db.scalar(select(func.count()).select_from(WebSession)) == 0

    flaky_sessions = SimpleNamespace(begin=flaky)
    policy = timed_portal.app.state.session_policy
    task = asyncio.create_task(purge_sessions(flaky_sessions, policy=policy, clock=clock, every_s=0.01))  # type: ignore[arg-type]
    try:
        with structlog.testing.capture_logs() as lines:
            await wait_for(purged, timeout_s=5, what="the ended session to be purged")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()
    assert calls >= 2
    assert [line["event"] for line in lines if line["log_level"] == "warning"] == [
        "could not remove ended sessions"
    ]


async def test_the_event_stream_ends_at_logg_ut_from_another_copy_of_the_cookie(portal: Portal) -> None:
    async with served(portal.app) as url, httpx.AsyncClient(base_url=url) as client:
        csrf = await sign_in(client, KARI.email)
        async with httpx.AsyncClient(base_url=url, cookies=httpx.Cookies(client.cookies)) as tab:
            async with event_stream(tab) as stream:
                await client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
                with pytest.raises(AssertionError, match="the event stream ended"):
                    await stream.next_event(timeout_s=5)
            assert (await tab.get("/api/v1/events")).status_code == 401


async def test_the_event_stream_ends_when_its_session_is_ended_elsewhere(
    timed_portal: Portal, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another portal process (or an administrator's change) ended it: the stream finds out at its
    # next check, made here every few milliseconds instead of every minute.
    timed_portal.app.state.live_hub.session_check_s = 0.01
    alive_checks: list[bool] = []
    three_passed = asyncio.Event()

    async def counted(*args: Any, **kwargs: Any) -> bool:
        alive = await session_alive(*args, **kwargs)
        alive_checks.append(alive)
        if alive_checks.count(True) >= 3:
            three_passed.set()
        return alive

    monkeypatch.setattr(live, "session_alive", counted)
    async with served(timed_portal.app) as url, httpx.AsyncClient(base_url=url) as client:
        await sign_in(client, KARI.email)
        async with event_stream(client) as stream:
            await asyncio.wait_for(three_passed.wait(), 5)  # checks pass while it is alive ...
            engine = create_engine(timed_portal.database_url)
            try:
                async with session_factory(engine).begin() as db:
                    await end_sessions_of(db, KARI.id)
            finally:
                await engine.dispose()
            with pytest.raises(AssertionError, match="the event stream ended"):
                await stream.next_event(timeout_s=5)  # ... and the first after the end stops it
        await sign_in(client, KARI.email)
        clock.advance(minutes=20)
        async with event_stream(client) as stream:
            # Idle 30 minutes after the sign-in: opening the stream is no activity of the employee's.
            clock.advance(minutes=10)
            with pytest.raises(AssertionError, match="the event stream ended"):
                await stream.next_event(timeout_s=5)
