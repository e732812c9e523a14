"""The sending use case, the delivery reports and the rules, with an in-memory store, a scripted
gateway and a controllable clock: no I/O, milliseconds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from mport_shared.events import (
    Envelope,
    EventPayload,
    OrderPlaced,
    VerificationCodeSent,
    VerificationDelivered,
    VerificationDeliveryFailed,
    VerificationFailureCode,
    VerificationRequested,
    envelop,
)
from mport_shared.messaging.consumer import PermanentFailure
from prometheus_client import REGISTRY
from sms_worker.adapters.gateway import (
    GatewayOutcomeUnknown,
    GatewayRejected,
    GatewayUnavailable,
    SendResult,
)
from sms_worker.domain import SendState, outcome_of_report, retry_delay_s, sms_text
from sms_worker.reports import DLR_PATH, dlr_endpoint
from sms_worker.sending import SmsSending
from starlette.applications import Starlette
from starlette.routing import Route

from .fakes import CODE, NOW, Clock, MemoryStore, ScriptedGateway, request

UNAVAILABLE = GatewayUnavailable("gateway answered 503: Temporal failure, try again later.")


def make(gateway: ScriptedGateway | None = None, **options: object) -> tuple[SmsSending, MemoryStore, Clock]:
    store, clock = MemoryStore(), Clock()
    sending = SmsSending(
        store=store,
        gateway=gateway or ScriptedGateway(),
        clock=clock,
        sleep=clock.sleep,
        **options,  # type: ignore[arg-type]
    )
    return sending, store, clock


def envelope_of(payload: VerificationRequested) -> Envelope[EventPayload]:
    return envelop(payload, source="/test", correlation_id=str(payload.verification_id))


def failures(store: MemoryStore) -> list[VerificationFailureCode]:
    return [e.reason_code for e in store.published if isinstance(e, VerificationDeliveryFailed)]


async def test_sends_the_code_in_norwegian_with_the_expiry_in_oslo_time() -> None:
    gateway = ScriptedGateway()
    sending, store, _ = make(gateway)
    payload = request(expires_in_s=600)  # 13:35 UTC in December is 14:35 in Oslo
    await sending.on_verification_requested(envelope_of(payload))
    assert gateway.calls == [
        {
            "to": "4748123456",
            "text": f"Din engangskode for mPort er {CODE}. Den gjelder til 14:35.",
            "delivery_id": str(payload.verification_id),
        }
    ]
    [sent] = store.published
    assert isinstance(sent, VerificationCodeSent)
    assert sent.verification_id == payload.verification_id
    assert store.rows[str(payload.verification_id)].state is SendState.SENT


def test_the_expiry_is_in_summer_time_in_summer() -> None:
    assert sms_text("123456", datetime(2026, 7, 1, 12, 5, tzinfo=UTC)).endswith("til 14:05.")


async def test_a_redelivered_request_sends_nothing_more() -> None:
    gateway = ScriptedGateway()
    sending, store, _ = make(gateway)
    envelope = envelope_of(request())
    await sending.on_verification_requested(envelope)
    await sending.on_verification_requested(envelope)
    assert len(gateway.calls) == 1
    assert len(store.of_type(VerificationCodeSent)) == 1


async def test_a_request_found_mid_send_is_not_sent_again() -> None:
    """The worker died between recording `sending` and the gateway's answer: maybe sent."""
    gateway = ScriptedGateway()
    sending, store, _ = make(gateway)
    payload = request()
    await store.claim(payload, traceparent="")
    await store.start_attempt(str(payload.verification_id))
    await sending.on_verification_requested(envelope_of(payload))
    assert gateway.calls == []
    assert store.rows[str(payload.verification_id)].state is SendState.SENDING
    assert store.published == []


async def test_a_duplicate_arriving_during_the_gateway_call_leaves_the_call_to_record_its_answer() -> None:
    """Two deliveries of one message at once (the consumer handles a prefetch concurrently)."""
    called, release = asyncio.Event(), asyncio.Event()
    calls = 0

    class HeldGateway:
        async def send(self, *, to: str, text: str, delivery_id: str) -> SendResult:
            nonlocal calls
            calls += 1
            called.set()
            await release.wait()
            return SendResult(gateway_message_id=delivery_id, queued=False)

    store = MemoryStore()
    sending = SmsSending(store=store, gateway=HeldGateway(), clock=Clock())
    envelope = envelope_of(request())
    first = asyncio.create_task(sending.on_verification_requested(envelope))
    await called.wait()
    await sending.on_verification_requested(envelope)  # the duplicate, while the first waits
    release.set()
    await first
    assert calls == 1
    assert len(store.of_type(VerificationCodeSent)) == 1


async def test_an_expired_code_is_never_sent() -> None:
    gateway = ScriptedGateway()
    sending, store, _ = make(gateway)
    await sending.on_verification_requested(envelope_of(request(expires_in_s=-1)))
    assert gateway.calls == []
    assert failures(store) == [VerificationFailureCode.EXPIRED]


async def test_a_code_about_to_expire_is_not_sent_by_the_clock_whatever_the_ttl_said() -> None:
    gateway = ScriptedGateway()
    sending, store, _ = make(gateway, min_remaining_s=5.0)
    await sending.on_verification_requested(envelope_of(request(expires_in_s=4)))
    assert gateway.calls == []
    assert failures(store) == [VerificationFailureCode.EXPIRED]


async def test_a_number_outside_the_allowed_countries_gets_nothing() -> None:
    gateway = ScriptedGateway()
    sending, store, _ = make(gateway, allowed_prefixes=("47",))
    counted = REGISTRY.get_sample_value("mport_sms_not_sent_total", {"reason": "not_allowed"}) or 0.0
    await sending.on_verification_requested(envelope_of(request(msisdn="4612345678")))
    assert gateway.calls == []
    assert failures(store) == [VerificationFailureCode.NOT_ALLOWED]
    # What SMS pumping looks like on the dashboard.
    assert REGISTRY.get_sample_value("mport_sms_not_sent_total", {"reason": "not_allowed"}) == counted + 1


async def test_other_allowed_prefixes_are_sent_to() -> None:
    gateway = ScriptedGateway()
    sending, _, _ = make(gateway, allowed_prefixes=("47", "46"))
    await sending.on_verification_requested(envelope_of(request(msisdn="4612345678")))
    assert len(gateway.calls) == 1


async def test_a_gateway_away_for_a_while_is_retried_with_growing_delays_then_sends_once() -> None:
    gateway = ScriptedGateway([UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, None])
    sending, store, clock = make(gateway, retry_first_s=1.0, retry_max_s=3.0)
    await sending.on_verification_requested(envelope_of(request()))
    assert len(gateway.calls) == 4
    assert clock.slept == [1.0, 2.0, 3.0]
    assert len(store.of_type(VerificationCodeSent)) == 1
    assert failures(store) == []


async def test_a_gateway_away_until_the_code_expires_fails_it_as_expired_without_sleeping_past_it() -> None:
    gateway = ScriptedGateway([UNAVAILABLE])
    sending, store, clock = make(gateway, retry_first_s=1.0, retry_max_s=30.0, min_remaining_s=5.0)
    payload = request(expires_in_s=60)
    await sending.on_verification_requested(envelope_of(payload))
    assert failures(store) == [VerificationFailureCode.EXPIRED]
    assert clock.now == payload.expires_at - timedelta(seconds=5)
    assert 3 < len(gateway.calls) < 10


async def test_a_permanent_refusal_fails_the_verification_visibly() -> None:
    gateway = ScriptedGateway([GatewayRejected("gateway answered 403: Not routable. Do not try again.")])
    sending, store, _ = make(gateway)
    await sending.on_verification_requested(envelope_of(request()))
    assert len(gateway.calls) == 1
    [failed] = store.published
    assert isinstance(failed, VerificationDeliveryFailed)
    assert failed.reason_code is VerificationFailureCode.REJECTED
    assert "Not routable" in failed.reason
    assert CODE not in failed.reason


async def test_an_answer_that_never_came_is_not_sent_again() -> None:
    gateway = ScriptedGateway([GatewayOutcomeUnknown("no answer from the gateway: ReadTimeout")])
    sending, store, _ = make(gateway)
    envelope = envelope_of(request())
    await sending.on_verification_requested(envelope)
    await sending.on_verification_requested(envelope)
    assert len(gateway.calls) == 1
    assert store.published == []


async def test_another_event_type_is_a_permanent_failure() -> None:
    from mport_shared.events import Billing, EmployeeCharge, OrderKind, OrderSnapshot

    sending, _, _ = make()
    order = OrderPlaced(
        order=OrderSnapshot(
            order_id=request().verification_id,
            company_id=request().company_id,
            employee_id=request().employee_id,
            employee_number="1",
            msisdn="4748123456",
            product_code="x",
            carrier_product_code="x",
            kind=OrderKind.ADDON,
            action="add",
            employee_charge=EmployeeCharge(amount_ore=0, billing=Billing.ONE_OFF),
            placed_at=NOW,
        )
    )
    with pytest.raises(PermanentFailure):
        await sending.on_verification_requested(envelop(order, source="/t", correlation_id="x"))


@pytest.mark.parametrize(
    ("report_type", "outcome"),
    [(1, "delivered"), (2, "undelivered"), (16, "undelivered"), (4, None), (8, None), (9, "delivered")],
)
def test_report_types(report_type: int, outcome: str | None) -> None:
    found = outcome_of_report(report_type)
    assert (found.value if found else None) == outcome


def test_retry_delays_double_up_to_the_maximum() -> None:
    assert [retry_delay_s(n, first_s=1, max_s=30) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


# ---- delivery reports ------------------------------------------------------------------------

SECRET = "dlr-secret"


async def reports_client(store: MemoryStore) -> httpx.AsyncClient:
    app = Starlette(routes=[Route(DLR_PATH, dlr_endpoint(store, secret=SECRET, clock=lambda: NOW))])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker")


async def sent_store() -> tuple[MemoryStore, str]:
    sending, store, _ = make()
    payload = request()
    await sending.on_verification_requested(envelope_of(payload))
    store.published.clear()
    return store, str(payload.verification_id)


async def test_a_delivered_report_publishes_delivered_once() -> None:
    store, verification_id = await sent_store()
    async with await reports_client(store) as client:
        for report_type in ("8", "1", "1"):
            params = {"token": SECRET, "id": verification_id, "type": report_type, "reply": "ACK/"}
            answer = await client.get(DLR_PATH, params=params)
            assert answer.status_code == 200
    assert [type(e) for e in store.published] == [VerificationDelivered]
    assert store.reports == [8, 1, 1]


@pytest.mark.parametrize("report_type", ["2", "16"])
async def test_an_undelivered_report_publishes_delivery_failed(report_type: str) -> None:
    store, verification_id = await sent_store()
    async with await reports_client(store) as client:
        await client.get(DLR_PATH, params={"token": SECRET, "id": verification_id, "type": report_type})
    assert failures(store) == [VerificationFailureCode.UNDELIVERED]


async def test_a_report_without_the_token_is_refused() -> None:
    store, verification_id = await sent_store()
    async with await reports_client(store) as client:
        for token in ("", "guess"):
            answer = await client.get(DLR_PATH, params={"token": token, "id": verification_id, "type": "1"})
            assert answer.status_code == 401
    assert store.published == []


async def test_a_report_for_an_unknown_sms_is_not_found_and_a_bad_one_refused() -> None:
    store, _ = await sent_store()
    async with await reports_client(store) as client:
        unknown = await client.get(DLR_PATH, params={"token": SECRET, "id": "nope", "type": "1"})
        bad = await client.get(DLR_PATH, params={"token": SECRET, "id": "x", "type": "%d"})
    assert unknown.status_code == 404
    assert bad.status_code == 400
    assert store.published == []
