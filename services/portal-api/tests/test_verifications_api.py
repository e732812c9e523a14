"""Phone verification through the API, on PostgreSQL and RabbitMQ (the portal in-process; the
sms-worker does not run: the tests read the code from the published message, as it would)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog.testing
from asgi_lifespan import LifespanManager
from mport_shared.db import create_engine, migrate, session_factory
from mport_shared.events import (
    VerificationCodeSent,
    VerificationDelivered,
    VerificationDeliveryFailed,
    VerificationFailureCode,
    VerificationRequested,
)
from mport_shared.messaging.connection import connect
from mport_shared.messaging.topology import SMS_WORKER
from mport_shared.testing import wait_for
from portal_api.main import create_app
from portal_api.models import Employee, Verification, tables
from portal_api.seed import DEMO_COMPANY_ID, FJORD_COMPANY_ID, HAKON, INGRID, KARI, seed
from portal_api.settings import PortalSettings
from sqlalchemy import select, update

from .conftest import FakeClock, MakePortal, Portal, publish, sign_in, worker_event
from .test_pages import Html, event_stream, served

PROBLEMS = "https://mport.no/problems/"


async def ask(client: httpx.AsyncClient, csrf: str) -> httpx.Response:
    return await client.post("/api/v1/verifications", headers={"X-CSRF-Token": csrf})


async def confirm(client: httpx.AsyncClient, csrf: str, verification_id: str, code: str) -> httpx.Response:
    return await client.post(
        f"/api/v1/verifications/{verification_id}/confirm",
        json={"code": code},
        headers={"X-CSRF-Token": csrf},
    )


async def sent_codes(portal: Portal, *, expect: int = 1) -> list[tuple[dict[str, Any], str | None]]:
    """The VerificationRequested messages in sms-worker's queue (nothing consumes it here), with
    each one's expiration (its TTL)."""
    connection = await connect(portal.amqp_url, name="probe")
    found: list[tuple[dict[str, Any], str | None]] = []
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(SMS_WORKER.name, ensure=False)

        async def arrived() -> bool:
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                expiration = message.expiration
                found.append((json.loads(message.body), None if expiration is None else str(expiration)))
            return len(found) >= expect

        await wait_for(arrived, timeout_s=10, what="the VerificationRequested messages")
        return found
    finally:
        await connection.close()


async def db_rows(portal: Portal, query: Any) -> list[Any]:
    engine = create_engine(portal.database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


async def db_write(portal: Portal, statement: Any) -> None:
    engine = create_engine(portal.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    finally:
        await engine.dispose()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_a_code_goes_out_with_the_message_ttl_and_the_right_code_turns_self_service_on(
    portal: Portal,
) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        response = await ask(client, csrf)
        assert response.status_code == 202, response.text
        body = response.json()
        assert set(body) == {"id", "expires_at"}
        assert response.headers["location"] == f"/api/v1/verifications/{body['id']}"
        [(message, expiration)] = await sent_codes(portal)
        event = message["data"]
        assert message["type"] == VerificationRequested.event_type
        assert event["verification_id"] == body["id"]
        assert event["msisdn"] == HAKON.msisdn  # the registered number, never one typed in
        assert re.fullmatch(r"[0-9]{6}", event["code"])
        # The message expires with the code: the TTL is about the code's 10 minutes.
        assert expiration is not None
        assert 590 <= float(expiration) <= 600  # seconds, as aio-pika reads it back
        expires_at = datetime.fromisoformat(body["expires_at"])
        assert datetime.fromisoformat(event["expires_at"]) == expires_at
        # Stored as its HMAC only.
        [row] = await db_rows(portal, select(Verification.code_hmac, Verification.msisdn))
        assert len(row.code_hmac) == 32
        assert event["code"].encode() not in row.code_hmac

        state = (await client.get(f"/api/v1/verifications/{body['id']}")).json()
        assert (state["state"], state["delivery_status"], state["tries_left"]) == ("pending", "requested", 5)

        before = (await client.get("/abonnement")).text
        assert 'id="self-service"' not in before
        right = await confirm(client, csrf, body["id"], event["code"])
        assert right.status_code == 200, right.text
        assert right.json() == {
            "id": body["id"],
            "state": "confirmed",
            "phone_verified": True,
            "self_service_active": True,
        }
        assert (await client.get("/api/v1/me")).json()["self_service_active"] is True
        assert 'id="self-service"' in (await client.get("/abonnement")).text  # the box is there
        used = await confirm(client, csrf, body["id"], event["code"])
        assert used.status_code == 410
        assert used.json()["type"] == PROBLEMS + "code-used"
        again = await ask(client, csrf)
        assert again.status_code == 409
        assert again.json()["type"] == PROBLEMS + "verification-already-confirmed"


async def test_the_outbox_row_expires_with_the_code_and_is_purged_once_sent(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        body = (await ask(client, csrf)).json()
    outbox = tables.outbox
    [row] = await db_rows(
        portal,
        select(outbox.c.expires_at, outbox.c.body).where(
            outbox.c.routing_key == VerificationRequested.event_type
        ),
    )
    assert row.expires_at == datetime.fromisoformat(body["expires_at"])

    async def purged() -> bool:
        rows = await db_rows(
            portal, select(outbox.c.id).where(outbox.c.routing_key == VerificationRequested.event_type)
        )
        return not rows

    # Relayed, then gone: the code is in the portal's database in clear only until it is sent.
    await wait_for(purged, timeout_s=20, what="the relayed code's outbox row to be purged")
    assert len(await sent_codes(portal)) == 1


async def test_wrong_codes_answer_400_with_tries_left_then_429_then_410(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        verification_id = (await ask(client, csrf)).json()["id"]
        [(message, _)] = await sent_codes(portal)
        code = message["data"]["code"]
        answers = [await confirm(client, csrf, verification_id, wrong(code)) for _ in range(5)]
        assert [a.status_code for a in answers] == [400, 400, 400, 400, 429]
        assert answers[0].headers["content-type"] == "application/problem+json"
        assert answers[0].json()["type"] == PROBLEMS + "wrong-code"
        assert [a.json()["tries_left"] for a in answers] == [4, 3, 2, 1, 0]
        assert answers[4].json()["type"] == PROBLEMS + "too-many-tries"
        assert answers[4].headers["retry-after"] == "1"  # a new code may be asked for at once
        dead = await confirm(client, csrf, verification_id, code)
        assert dead.status_code == 410
        assert dead.json()["type"] == PROBLEMS + "code-dead"
        assert code not in json.dumps([a.json() for a in [*answers, dead]])  # never in an error
        malformed = await confirm(client, csrf, verification_id, "x" * 21)
        assert malformed.status_code == 422
        assert malformed.json()["type"] == PROBLEMS + "invalid-request"
    [failures] = await db_rows(portal, select(Employee.verification_failures).where(Employee.id == HAKON.id))
    assert failures == (5,)


async def test_a_new_code_replaces_the_old_and_the_fourth_in_15_minutes_is_429_with_retry_after(
    portal: Portal,
) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        ids = []
        for _ in range(3):
            response = await ask(client, csrf)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        messages = await sent_codes(portal, expect=3)
        first_code = next(m["data"]["code"] for m, _ in messages if m["data"]["verification_id"] == ids[0])
        replaced = await confirm(client, csrf, ids[0], first_code)
        assert replaced.status_code == 410
        assert replaced.json()["type"] == PROBLEMS + "code-replaced"
        fourth = await ask(client, csrf)
        assert fourth.status_code == 429
        assert fourth.json()["type"] == PROBLEMS + "too-many-codes"
        retry_after = int(fourth.headers["retry-after"])
        assert 890 <= retry_after <= 900
        assert fourth.json()["retry_after_s"] == retry_after
    states = await db_rows(portal, select(Verification.state).order_by(Verification.created_at))
    assert [s for (s,) in states] == ["replaced", "replaced", "pending"]


async def test_another_employees_verification_is_404(portal: Portal) -> None:
    async with portal.client() as hakon, portal.client() as kari:
        hakon_csrf = await sign_in(hakon, HAKON.email)
        verification_id = (await ask(hakon, hakon_csrf)).json()["id"]
        [(message, _)] = await sent_codes(portal)
        kari_csrf = await sign_in(kari, KARI.email)
        for response in (
            await kari.get(f"/api/v1/verifications/{verification_id}"),
            await confirm(kari, kari_csrf, verification_id, message["data"]["code"]),
        ):
            assert response.status_code == 404
            assert response.json()["type"] == PROBLEMS + "verification-not-found"
        missing = await confirm(hakon, hakon_csrf, str(uuid.uuid4()), "123456")
        assert missing.status_code == 404
    [row] = await db_rows(portal, select(Verification.attempts))
    assert row == (0,)


async def test_asking_needs_the_csrf_token_and_a_session(portal: Portal) -> None:
    async with portal.client() as client:
        assert (await client.post("/api/v1/verifications")).status_code in (401, 403)
        await sign_in(client, HAKON.email)
        refused = await client.post("/api/v1/verifications")
        assert refused.status_code == 403
        assert refused.json()["type"] == PROBLEMS + "csrf-failed"


async def test_concurrent_requests_leave_one_live_code_and_keep_the_limit(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        answers = await asyncio.gather(*(ask(client, csrf) for _ in range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(202) == 3, statuses  # 3 per number per 15 minutes, however they race
    assert set(statuses) <= {202, 409, 429}
    states = await db_rows(portal, select(Verification.state))
    assert sorted(s for (s,) in states) == ["pending", "replaced", "replaced"]


async def test_a_locked_employee_is_423_until_the_administrator_unlocks(portal: Portal) -> None:
    await db_write(portal, update(Employee).where(Employee.id == HAKON.id).values(verification_failures=100))
    async with portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        locked = await ask(client, csrf)
        assert locked.status_code == 423
        assert locked.json()["type"] == PROBLEMS + "verification-locked"
        await db_write(
            portal, update(Employee).where(Employee.id == HAKON.id).values(verification_failures=0)
        )
        assert (await ask(client, csrf)).status_code == 202


async def test_the_country_and_the_company_budget_are_refused_clearly_and_recorded(
    make_portal: MakePortal,
) -> None:
    since = datetime.now().astimezone() - timedelta(minutes=1)
    abroad_portal = await make_portal(SMS_ALLOWED_PREFIXES="46")
    async with abroad_portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        abroad = await ask(client, csrf)
        assert abroad.status_code == 403
        assert abroad.json()["type"] == PROBLEMS + "sms-country-not-allowed"
        assert "Contact your mPort administrator" in abroad.json()["detail"]
    portal = await make_portal(SMS_DAILY_BUDGET_PER_COMPANY=0)
    async with portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        spent = await ask(client, csrf)
        assert spent.status_code == 429
        assert spent.json()["type"] == PROBLEMS + "sms-budget-spent"
        assert int(spent.headers["retry-after"]) >= 1
        # The page says so too, and offers no button that would only be refused.
        page = Html((await client.get("/bekreft-telefonnummer")).text)
        assert "dagens kvote av SMS-koder" in page.one(data_role="send-refused").text
        assert "disabled" in page.one("button", data_action="send-code").attrs
    # For the administrator: the refusals, by company and employee, newest first.
    for which, reason in ((abroad_portal, "country_not_allowed"), (portal, "budget_spent")):
        async with which.app.state.units.new() as uow:
            refusals = await uow.verifications.refusals_of(DEMO_COMPANY_ID, since=since, employee_id=HAKON.id)
            assert [(r.reason, r.msisdn) for r in refusals] == [(reason, HAKON.msisdn)]
            assert (
                await uow.verifications.refusals_of(DEMO_COMPANY_ID, since=since, employee_id=KARI.id) == []
            )
            assert await uow.verifications.refusals_of(FJORD_COMPANY_ID, since=since) == []
    assert await db_rows(portal, select(Verification.id)) == []  # nothing was sent


async def test_a_code_expires_and_a_changed_number_voids_it(make_portal: MakePortal) -> None:
    clock = FakeClock(now=datetime.now().astimezone())
    portal = await make_portal(clock=clock)
    async with portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        first = (await ask(client, csrf)).json()["id"]
        [(message, _)] = await sent_codes(portal)
        clock.advance(minutes=10, seconds=1)
        expired = await confirm(client, csrf, first, message["data"]["code"])
        assert expired.status_code == 410
        assert expired.json()["type"] == PROBLEMS + "code-expired"
        second = (await ask(client, csrf)).json()["id"]
        messages = await sent_codes(portal)
        code = messages[-1][0]["data"]["code"]
        from portal_api.models import Subscription

        await db_write(
            portal,
            update(Subscription).where(Subscription.employee_id == HAKON.id).values(msisdn="4748999999"),
        )
        changed = await confirm(client, csrf, second, code)
        assert changed.status_code == 410
        assert changed.json()["type"] == PROBLEMS + "number-changed"


async def test_delivery_reports_update_the_state_and_the_event_stream(portal: Portal) -> None:
    async with served(portal.app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        csrf = await sign_in(client, HAKON.email)
        verification_id = (await ask(client, csrf)).json()["id"]
        vid = uuid.UUID(verification_id)
        now = datetime.now().astimezone()
        async with event_stream(client) as stream:
            await publish(
                portal.amqp_url,
                worker_event(
                    VerificationCodeSent(verification_id=vid, gateway_message_id="k-1", sent_at=now)
                ),
            )
            name, data = await stream.next_event()
            assert name == "verification"
            assert json.loads(data) == {
                "verification_id": verification_id,
                "delivery_status": "sent",
                "delivery_reason": None,
                "delivery_reason_code": None,
            }
            await publish(
                portal.amqp_url,
                worker_event(
                    VerificationDeliveryFailed(
                        verification_id=vid,
                        reason="SMSC: not delivered",
                        reason_code=VerificationFailureCode.UNDELIVERED,
                        failed_at=now + timedelta(seconds=1),
                    )
                ),
            )
            name, data = await stream.next_event()
            assert name == "verification"
            assert json.loads(data)["delivery_status"] == "failed"
            assert json.loads(data)["delivery_reason_code"] == "undelivered"

        async def failed() -> bool:
            state = (await client.get(f"/api/v1/verifications/{verification_id}")).json()
            return bool(state["delivery_status"] == "failed")

        await wait_for(failed, timeout_s=10, what="the failed delivery to be stored")
        # A delivered after failed is not believed: the status never goes back nor sideways.
        await publish(
            portal.amqp_url, worker_event(VerificationDelivered(verification_id=vid, delivered_at=now))
        )
        await asyncio.sleep(0.5)
        state = (await client.get(f"/api/v1/verifications/{verification_id}")).json()
        assert (state["delivery_status"], state["delivery_reason_code"]) == ("failed", "undelivered")
        page = Html((await client.get("/bekreft-telefonnummer")).text)
        assert "kom ikke fram" in page.one(data_role="delivery").text


async def test_the_page_in_the_seeds_words_works_without_javascript(portal: Portal) -> None:
    async with portal.client() as client:
        await sign_in(client, HAKON.email)
        page = Html((await client.get("/bekreft-telefonnummer")).text)
        text = page.text
        assert page.one("h1").text == "Bekreft telefonnummer for Håkon Hafell"
        assert "Registrert telefonnummer" in text
        assert HAKON.msisdn is not None
        assert HAKON.msisdn in page.one(data_role="msisdn").text
        assert "Klikk på knappen nedenfor for å få tilsendt engangskode på SMS for å bekrefte" in text
        assert "Hvis nummeret er feil, vennligst kontakt din mPort administrator." in text
        assert INGRID.name in text  # the administrator, with their contact
        assert "admin@demo.no" in text
        assert "http://127.0.0.1:8082/messages" in text  # local mode: where the code can be read
        [send] = [b for b in page.find("button") if b.text == "Send engangskode på SMS"]
        form = next(a for a in send.ancestors if a.tag == "form")
        token = page.one("input", name="csrf_token", within=form).attrs["value"]
        sent = await client.post(form.attrs["action"], data={"csrf_token": token})
        assert sent.status_code == 303
        page = Html((await client.get(sent.headers["location"])).text)
        label = page.one("label", for_="code")
        assert label.text == "Legg inn engangskode mottatt på SMS"
        code_field = page.one("input", name="code")
        assert code_field.attrs["autocomplete"] == "one-time-code"
        [button] = [b for b in page.find("button") if b.text == "Bekreft telefonnummer"]
        form = next(a for a in button.ancestors if a.tag == "form")
        fields = {
            e.attrs["name"]: e.attrs.get("value", "")
            for e in page.find("input", within=form)
            if "name" in e.attrs
        }
        [(message, _)] = await sent_codes(portal)
        code = message["data"]["code"]
        wrong_answer = await client.post(form.attrs["action"], data={**fields, "code": wrong(code)})
        page = Html((await client.get(wrong_answer.headers["location"])).text)
        assert "Feil kode. Du har 4 forsøk igjen med denne koden." in page.one(data_role="flash").text
        right = await client.post(form.attrs["action"], data={**fields, "code": code})
        assert right.status_code == 303
        page = Html((await client.get(right.headers["location"])).text)
        assert "Ditt telefonnummer er bekreftet." in page.text
        ok = next(a for a in page.find("a") if a.text == "Ok")
        assert ok.attrs["href"] == "/abonnement"
        assert 'id="self-service"' in (await client.get("/abonnement")).text


async def test_the_page_in_english(portal: Portal) -> None:
    async with portal.client() as client:
        await sign_in(client, HAKON.email)
        page = Html((await client.get("/bekreft-telefonnummer?lang=en")).text)
        assert page.one("h1").text == "Confirm phone number for Håkon Hafell"
        assert any(b.text == "Send one-time code by SMS" for b in page.find("button"))


async def test_the_simulator_url_is_a_setting(make_portal: MakePortal) -> None:
    portal = await make_portal(SMS_SIMULATOR_URL="http://sms.example:9999")
    async with portal.client() as client:
        await sign_in(client, HAKON.email)
        assert "http://sms.example:9999/messages" in (await client.get("/bekreft-telefonnummer")).text


async def test_no_log_line_of_a_verification_carries_the_code(
    portal: Portal, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Everything at DEBUG, except what mport_shared.logging.configure_logging holds at WARNING in
    # every service whatever LOG_LEVEL says (aiormq logs whole frames, message bodies included).
    caplog.set_level(logging.DEBUG)
    for noisy in ("aiormq", "aio_pika", "httpx", "httpcore", "uvicorn.access"):
        caplog.set_level(logging.WARNING, logger=noisy)
    with structlog.testing.capture_logs() as captured:
        async with portal.client() as client:
            csrf = await sign_in(client, HAKON.email)
            verification_id = (await ask(client, csrf)).json()["id"]
            [(message, _)] = await sent_codes(portal)
            code = message["data"]["code"]
            await confirm(client, csrf, verification_id, wrong(code))
            await confirm(client, csrf, verification_id, code)
            await confirm(client, csrf, verification_id, code)
            await client.get("/bekreft-telefonnummer")
            await asyncio.sleep(1)  # the relay and the purge have logged what they will
    out = capsys.readouterr()
    logs = "\n".join([json.dumps(captured, default=str), caplog.text, out.out, out.err])
    assert "verification code requested" in logs  # the logs were captured
    found = re.search(rf"(?<![0-9]){code}(?![0-9])", logs)
    assert found is None, logs[max(0, found.start() - 600) : found.end() + 200]


async def test_on_sqlite_too_concurrent_requests_leave_one_live_code(amqp_url: str, tmp_path: Path) -> None:
    # `make run`'s database: no row locks (SQLite has one writer at a time), the index holds.
    url = f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}"
    await migrate("portal_api:migrations", url)
    engine = create_engine(url)
    await seed(session_factory(engine))
    await engine.dispose()
    app = create_app(PortalSettings(database_url=url, amqp_url=amqp_url, PORTAL_MODE="local"))  # type: ignore[call-arg]
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        portal = Portal(app=app, database_url=url, amqp_url=amqp_url)
        async with portal.client() as client:
            csrf = await sign_in(client, HAKON.email)
            answers = await asyncio.gather(*(ask(client, csrf) for _ in range(6)))
            statuses = sorted(a.status_code for a in answers)
            assert set(statuses) <= {202, 409, 429}, [a.text for a in answers]
            assert statuses.count(202) == 3, statuses  # the send limit holds here too
            states = [s for (s,) in await db_rows(portal, select(Verification.state))]
            assert states.count("pending") == 1
            messages = await sent_codes(portal, expect=statuses.count(202))
            [(pending,)] = await db_rows(
                portal, select(Verification.id).where(Verification.state == "pending")
            )
            [code] = [m["data"]["code"] for m, _ in messages if m["data"]["verification_id"] == str(pending)]
            assert (await confirm(client, csrf, str(pending), code)).status_code == 200


async def test_the_page_says_beside_the_button_why_no_more_codes_are_sent(portal: Portal) -> None:
    async with portal.client() as client:
        await sign_in(client, HAKON.email)
        for _ in range(4):
            page = Html((await client.get("/bekreft-telefonnummer")).text)
            send = page.one("form", action="/bekreft-telefonnummer/send")
            token = page.one("input", name="csrf_token", within=send).attrs["value"]
            sent = await client.post("/bekreft-telefonnummer/send", data={"csrf_token": token})
            assert sent.status_code == 303
        page = Html((await client.get("/bekreft-telefonnummer")).text)
        [flash] = page.find(data_role="flash")
        assert flash.attrs["id"] == "flash-send"  # beside the send button, not the code field
        assert re.fullmatch(
            r"Du har bedt om for mange koder\. Prøv igjen om 1[45] min [0-9]+ s\.", flash.text
        )
        assert "disabled" in page.one("button", data_action="send-code").attrs
        assert "hidden" in page.one(data_role="send-refused").attrs  # said once
        # The newest code can still be typed.
        assert page.one("input", name="code").attrs.get("aria-invalid") is None


async def test_concurrent_tries_cannot_outrun_the_five_tries_nor_use_a_code_twice(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, HAKON.email)
        first = (await ask(client, csrf)).json()["id"]
        second = (await ask(client, csrf)).json()["id"]
        messages = await sent_codes(portal, expect=2)
        code = {m["data"]["verification_id"]: m["data"]["code"] for m, _ in messages}
        wrong_answers = await asyncio.gather(
            *(confirm(client, csrf, second, wrong(code[second])) for _ in range(10))
        )
        assert sorted(a.status_code for a in wrong_answers) == [400] * 4 + [410] * 5 + [429]
        third = (await ask(client, csrf)).json()["id"]
        messages = await sent_codes(portal, expect=1)
        right = messages[-1][0]["data"]["code"]
        answers = await asyncio.gather(*(confirm(client, csrf, third, right) for _ in range(4)))
        assert sorted(a.status_code for a in answers) == [200, 410, 410, 410]
        assert {a.json()["type"] for a in answers if a.status_code == 410} == {PROBLEMS + "code-used"}
    assert first != second
