"""The TMF622 carrier adapter against the simulator in-process, and against scripted HTTP failures."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from itertools import pairwise
from typing import Any

import httpx
import pytest
from carrier_simulator import SimulatorSettings, create_app
from order_worker.adapters.carrier import (
    CarrierOrder,
    CarrierOrderRequest,
    CarrierOrderState,
    CarrierRejected,
    CarrierResponseInvalid,
    CarrierStillProcessing,
    CarrierUnavailable,
    Tmf622Carrier,
    wait_until_terminal,
)

BASE_URL = "http://carrier.test/tmf-api/productOrderingManagement/v5"


@asynccontextmanager
async def simulated(**overrides: Any) -> AsyncIterator[tuple[Tmf622Carrier, httpx.AsyncClient]]:
    """The adapter on a fresh simulator, and a raw client to look behind its back."""
    settings: dict[str, Any] = {"latency_ms": 0, "failure_rate": 0.0, "unavailable_rate": 0.0}
    app = create_app(SimulatorSettings(**(settings | overrides)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield Tmf622Carrier(client), client


@asynccontextmanager
async def scripted(
    handler: Callable[[httpx.Request], httpx.Response],
) -> AsyncIterator[Tmf622Carrier]:
    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield Tmf622Carrier(client)


def order_request(
    order_id: str = "ord-1", offering: str = "Surf-5GB", **characteristics: str
) -> CarrierOrderRequest:
    return CarrierOrderRequest(
        order_id=order_id,
        msisdn="4791234567",
        product_offering_id=offering,
        action="add",
        characteristics=characteristics,
    )


def tmf_error(status_code: int, reason: str, message: str | None = None) -> httpx.Response:
    body = {"code": "X", "reason": reason, "status": str(status_code), "@type": "Error"}
    if message:
        body["message"] = message
    return httpx.Response(status_code, json=body)


class ScriptedCarrier:
    """A Carrier whose get() plays back a list of answers, recording when it was asked."""

    def __init__(self, answers: list[CarrierOrder | Exception]) -> None:
        self._answers = answers
        self.asked_at: list[float] = []

    async def submit(self, request: CarrierOrderRequest) -> CarrierOrder:
        raise NotImplementedError

    async def get(self, carrier_order_id: str) -> CarrierOrder:
        self.asked_at.append(time.monotonic())
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def carrier_order(state: CarrierOrderState) -> CarrierOrder:
    return CarrierOrder(id="c-1", external_id="ord-1", state=state, failure_reason=None)


async def test_submitting_twice_makes_one_carrier_order() -> None:
    async with simulated(latency_ms=60_000) as (carrier, client):
        first = await carrier.submit(order_request("ord-7"))
        again = await carrier.submit(order_request("ord-7"))
        at_carrier = (await client.get("productOrder", params={"externalId": "ord-7"})).json()

    assert again == first
    assert first.external_id == "ord-7"
    assert first.state is CarrierOrderState.ACKNOWLEDGED
    assert not first.is_terminal
    assert [order["id"] for order in at_carrier] == [first.id]


async def test_submitted_order_completes() -> None:
    async with simulated() as (carrier, _):
        submitted = await carrier.submit(order_request())
        final = await wait_until_terminal(carrier, submitted, timeout_s=2.0)

    assert final.state is CarrierOrderState.COMPLETED
    assert final.is_terminal
    assert (final.id, final.external_id, final.failure_reason) == (submitted.id, "ord-1", None)


async def test_submit_sends_a_tmf622_product_order() -> None:
    async with simulated(latency_ms=60_000) as (carrier, client):
        submitted = await carrier.submit(order_request(icc="8947000000000000001"))
        stored = (await client.get(f"productOrder/{submitted.id}")).json()

    assert stored["externalId"] == [
        {
            "id": "ord-1",
            "owner": "mPort",
            "externalIdentifierType": "order",
            "@type": "ExternalIdentifier",
        }
    ]
    [item] = stored["productOrderItem"]
    assert (item["action"], item["productOffering"]["id"]) == ("add", "Surf-5GB")
    assert item["product"]["productCharacteristic"] == [
        {
            "name": name,
            "value": value,
            "valueType": "string",
            "@type": "StringCharacteristic",
        }
        for name, value in (("msisdn", "4791234567"), ("icc", "8947000000000000001"))
    ]


async def test_unknown_offering_ends_failed_with_the_carriers_reason() -> None:
    async with simulated() as (carrier, _):
        submitted = await carrier.submit(order_request(offering="Surf-999GB"))
        final = await wait_until_terminal(carrier, submitted, timeout_s=2.0)

    assert final.state is CarrierOrderState.FAILED
    assert final.is_terminal
    assert final.failure_reason == "Unknown product offering 'Surf-999GB'"


async def test_simulated_outage_is_unavailable() -> None:
    async with simulated(unavailable_rate=1.0) as (carrier, _):
        with pytest.raises(CarrierUnavailable, match="503"):
            await carrier.submit(order_request())


async def test_unknown_carrier_order_is_unavailable_not_rejected() -> None:
    async with simulated() as (carrier, _):
        with pytest.raises(CarrierUnavailable, match="404"):
            await carrier.get("no-such-order")


@pytest.mark.parametrize("status_code", [500, 502, 503, 504, 429, 408, 404, 401, 403])
async def test_transient_answers_are_unavailable(status_code: int) -> None:
    async with scripted(lambda _: tmf_error(status_code, "busy")) as carrier:
        with pytest.raises(CarrierUnavailable) as raised:
            await carrier.submit(order_request())

    assert not isinstance(raised.value, CarrierResponseInvalid)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
    ids=type,
)
async def test_transport_failures_are_unavailable(failure: httpx.TransportError) -> None:
    def fail(_: httpx.Request) -> httpx.Response:
        raise failure

    async with scripted(fail) as carrier:
        with pytest.raises(CarrierUnavailable) as raised:
            await carrier.submit(order_request())

    assert raised.value.__cause__ is failure


async def test_bad_request_is_rejected_with_the_tmf_reason() -> None:
    answer = tmf_error(400, "Invalid request", "productOrderItem.0.action: bad")
    async with scripted(lambda _: answer) as carrier:
        with pytest.raises(CarrierRejected) as raised:
            await carrier.submit(order_request())

    assert raised.value.reason == "Invalid request: productOrderItem.0.action: bad"
    assert raised.value.status_code == 400


async def test_rejection_without_a_tmf_body_keeps_the_text() -> None:
    async with scripted(lambda _: httpx.Response(422, text="msisdn not ours")) as carrier:
        with pytest.raises(CarrierRejected, match="msisdn not ours"):
            await carrier.submit(order_request())


async def test_answer_that_is_not_a_product_order_is_invalid() -> None:
    async with scripted(lambda _: httpx.Response(201, json={"hello": "world"})) as carrier:
        with pytest.raises(CarrierResponseInvalid):
            await carrier.submit(order_request())


async def test_conflict_on_a_repeated_external_id_finds_the_first_order() -> None:
    existing = {
        "id": "c-42",
        "state": "inProgress",
        "externalId": [{"id": "ord-1", "@type": "ExternalIdentifier"}],
        "@type": "ProductOrder",
    }

    def carrier_that_refuses_duplicates(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return tmf_error(409, "Duplicate externalId")
        assert request.url.params["externalId"] == "ord-1"
        return httpx.Response(200, json=[existing])

    async with scripted(carrier_that_refuses_duplicates) as carrier:
        found = await carrier.submit(order_request())

    assert found == CarrierOrder(
        id="c-42", external_id="ord-1", state=CarrierOrderState.IN_PROGRESS, failure_reason=None
    )


async def test_wait_gives_up_at_the_deadline_with_the_last_state() -> None:
    async with simulated(latency_ms=60_000) as (carrier, _):
        submitted = await carrier.submit(order_request())
        started = time.monotonic()
        with pytest.raises(CarrierStillProcessing) as raised:
            await wait_until_terminal(carrier, submitted, timeout_s=0.1)
        waited = time.monotonic() - started

    assert raised.value.order.id == submitted.id
    assert raised.value.order.state is CarrierOrderState.ACKNOWLEDGED
    assert 0.1 <= waited < 1.0


async def test_wait_follows_a_slow_order_to_its_end() -> None:
    async with simulated(latency_ms=100) as (carrier, _):
        submitted = await carrier.submit(order_request())
        final = await wait_until_terminal(carrier, submitted, timeout_s=2.0)

    assert final.state is CarrierOrderState.COMPLETED


async def test_wait_returns_a_finished_order_without_asking() -> None:
    fake = ScriptedCarrier([RuntimeError("must not be asked")])
    done = carrier_order(CarrierOrderState.FAILED)

    assert await wait_until_terminal(fake, done, timeout_s=1.0) is done
    assert fake.asked_at == []


async def test_wait_polls_through_an_outage() -> None:
    completed = carrier_order(CarrierOrderState.COMPLETED)
    fake = ScriptedCarrier([CarrierUnavailable("503"), CarrierUnavailable("503"), completed])

    final = await wait_until_terminal(fake, carrier_order(CarrierOrderState.ACKNOWLEDGED), timeout_s=2.0)

    assert final is completed
    assert len(fake.asked_at) == 3


async def test_wait_during_a_long_outage_ends_still_processing() -> None:
    fake = ScriptedCarrier([CarrierUnavailable("503")])

    with pytest.raises(CarrierStillProcessing) as raised:
        await wait_until_terminal(fake, carrier_order(CarrierOrderState.IN_PROGRESS), timeout_s=0.05)

    assert isinstance(raised.value.__cause__, CarrierUnavailable)


async def test_wait_polls_with_growing_delays_up_to_the_cap() -> None:
    fake = ScriptedCarrier([carrier_order(CarrierOrderState.IN_PROGRESS)])

    with pytest.raises(CarrierStillProcessing):
        await wait_until_terminal(
            fake,
            carrier_order(CarrierOrderState.ACKNOWLEDGED),
            timeout_s=0.6,
            first_delay_s=0.01,
            max_delay_s=0.05,
        )

    gaps = [later - earlier for earlier, later in pairwise(fake.asked_at)]
    # Delays 0.01, 0.02, 0.04, then 0.05 each: about fourteen reads in 0.6 s. A fixed 0.01 s
    # would read sixty times; doubling without the cap would reach a 0.32 s gap.
    assert 8 <= len(fake.asked_at) <= 16
    assert gaps[2] > gaps[0]
    # Generous slack: the bound is about the cap, not about this machine's scheduling.
    assert max(gaps) < 0.05 + 0.1


def test_request_keeps_msisdn_out_of_the_characteristics() -> None:
    with pytest.raises(ValueError, match="msisdn"):
        order_request(msisdn="4700000000")


def test_request_needs_an_order_id() -> None:
    with pytest.raises(ValueError, match="order_id"):
        order_request(order_id="")


def test_request_characteristics_cannot_change_afterwards() -> None:
    given = {"icc": "8947000000000000001"}
    request = CarrierOrderRequest(
        order_id="ord-1",
        msisdn="4791234567",
        product_offering_id="SIM-Aktiver",
        action="modify",
        characteristics=given,
    )
    given["icc"] = "changed"

    assert request.characteristics == {"icc": "8947000000000000001"}
