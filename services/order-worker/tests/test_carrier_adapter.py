"""The TMF622 carrier adapter against the simulator in-process, and against scripted HTTP failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from carrier_simulator import SimulatorSettings, create_app
from order_worker.adapters.carrier import (
    CarrierOrder,
    CarrierOrderRequest,
    CarrierOrderState,
    CarrierOrderUnknown,
    CarrierRejected,
    CarrierResponseInvalid,
    CarrierUnavailable,
    Tmf622Carrier,
    look_again,
    parse_state_change,
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


async def until_terminal(carrier: Tmf622Carrier, order: CarrierOrder) -> CarrierOrder:
    for _ in range(200):
        if order.is_terminal:
            return order
        await asyncio.sleep(0.01)
        order = await carrier.get(order.id)
    raise AssertionError(f"carrier order {order.id} still {order.state}")


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
        final = await until_terminal(carrier, submitted)

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
        final = await until_terminal(carrier, submitted)

    assert final.state is CarrierOrderState.FAILED
    assert final.is_terminal
    assert final.failure_reason == "Unknown product offering 'Surf-999GB'"


async def test_simulated_outage_is_unavailable() -> None:
    async with simulated(unavailable_rate=1.0) as (carrier, _):
        with pytest.raises(CarrierUnavailable, match="503"):
            await carrier.submit(order_request())


async def test_an_order_the_carrier_does_not_know_is_unknown_not_rejected() -> None:
    async with simulated() as (carrier, _):
        with pytest.raises(CarrierOrderUnknown, match="no-such-order"):
            await carrier.get("no-such-order")


async def test_the_carriers_expected_completion_date_is_read() -> None:
    async with simulated(latency_ms=3_600_000) as (carrier, _):
        submitted = await carrier.submit(order_request())
    assert submitted.expected_completion is not None
    assert submitted.expected_completion.tzinfo is not None


async def test_a_first_look_reads_an_unfinished_order_once_more_and_keeps_it_through_an_outage() -> None:
    acknowledged = CarrierOrder(
        id="c-1", external_id="o", state=CarrierOrderState.ACKNOWLEDGED, failure_reason=None
    )
    async with scripted(lambda _: tmf_error(503, "busy")) as carrier:
        assert await look_again(carrier, acknowledged, after_s=0) is acknowledged
    done = {"id": "c-1", "state": "completed", "@type": "ProductOrder"}
    async with scripted(lambda _: httpx.Response(200, json=done)) as carrier:
        assert (await look_again(carrier, acknowledged, after_s=0)).state is CarrierOrderState.COMPLETED


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


async def test_a_listener_is_registered_with_a_hub_and_removed_again() -> None:
    seen: list[tuple[str, str, Any]] = []

    def hub(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))
        if request.method == "POST":
            return httpx.Response(201, json={"id": "hub-1", "callback": body["callback"], "@type": "Hub"})
        return httpx.Response(204)

    async with scripted(hub) as carrier:
        hub_id = await carrier.register_listener("http://worker:8091/?token=t")
        await carrier.unregister_listener(hub_id)

    assert hub_id == "hub-1"
    assert seen[0][:2] == ("POST", "/tmf-api/productOrderingManagement/v5/hub")
    assert seen[0][2]["callback"] == "http://worker:8091/?token=t"
    assert seen[1][:2] == ("DELETE", "/tmf-api/productOrderingManagement/v5/hub/hub-1")


async def test_removing_a_hub_the_carrier_no_longer_knows_is_no_error() -> None:
    async with scripted(lambda _: tmf_error(404, "No such hub")) as carrier:
        await carrier.unregister_listener("gone")


def test_a_state_change_notification_names_its_order_and_claims_a_state() -> None:
    body = {
        "eventId": "1",
        "eventType": "ProductOrderStateChangeEvent",
        "event": {"productOrder": {"id": "c-9", "state": "completed",
                                   "externalId": [{"id": "ord-1", "@type": "ExternalIdentifier"}]}},
    }  # fmt: skip
    notice = parse_state_change(json.dumps(body).encode())
    assert (notice.carrier_order_id, notice.external_ids) == ("c-9", ("ord-1",))
    assert notice.claimed_state is CarrierOrderState.COMPLETED
    # The v5 schema calls the payload stateChangeEvent; an unknown state claims nothing.
    other = parse_state_change(b'{"stateChangeEvent": {"productOrder": {"id": "c-9", "state": "odd"}}}')
    assert (other.carrier_order_id, other.claimed_state) == ("c-9", None)


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"event": {}}', b'{"event": {"productOrder": {"id": ""}}}', b"\xff"]
)
def test_a_notification_that_names_no_order_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"JSON|productOrder|object"):
        parse_state_change(body)


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
