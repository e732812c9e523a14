"""The TMF622 carrier adapter against the simulator and against scripted carriers, each served on a
loopback port, and against a carrier that refuses, stalls or does not speak HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from carrier_simulator import SimulatorSettings, create_app
from mport_shared.testing import served
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
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

API = "/tmf-api/productOrderingManagement/v5"

LookBehind = Callable[..., Awaitable[Any]]


@asynccontextmanager
async def carrier_at(base_url: str, *, timeout_s: float = 10.0) -> AsyncIterator[Tmf622Carrier]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield Tmf622Carrier(session, base_url + API)


@asynccontextmanager
async def simulated(**overrides: Any) -> AsyncIterator[tuple[Tmf622Carrier, LookBehind]]:
    """The adapter on a fresh simulator, and a raw GET (JSON) to look behind its back."""
    settings: dict[str, Any] = {"latency_ms": 0, "failure_rate": 0.0, "unavailable_rate": 0.0}
    app = create_app(SimulatorSettings(**(settings | overrides)))
    async with served(app) as base_url, aiohttp.ClientSession() as session:

        async def look_behind(path: str, **params: str) -> Any:
            async with session.get(f"{base_url}{API}/{path}", params=params) as response:
                return await response.json()

        yield Tmf622Carrier(session, base_url + API), look_behind


@dataclass(frozen=True)
class Seen:
    """A request as the scripted carrier received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # the JSON sent, None for no body
    client_port: int  # tells one connection from another


Answer = Callable[[Seen], Response]


class ScriptedCarrier:
    """A carrier that gives the test's `answer` to every request, and keeps the requests. Served
    once for the module: starting and stopping uvicorn takes ~0.2 s, most of the test's time."""

    def __init__(self) -> None:
        self.base_url = ""
        self._answer: Answer = lambda _: Response(status_code=500)
        self._seen: list[Seen] = []

    @asynccontextmanager
    async def __call__(self, answer: Answer) -> AsyncIterator[tuple[Tmf622Carrier, list[Seen]]]:
        self._answer, self._seen = answer, []
        async with carrier_at(self.base_url) as carrier:
            yield carrier, self._seen

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        assert request.client is not None
        seen = Seen(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            body=json.loads(body) if body else None,
            client_port=request.client.port,
        )
        self._seen.append(seen)
        return self._answer(seen)


@pytest.fixture(scope="module")
async def scripted() -> AsyncIterator[ScriptedCarrier]:
    """`async with scripted(answer) as (carrier, seen)`: the adapter on a scripted carrier."""
    carrier = ScriptedCarrier()
    app = Starlette(routes=[Route("/{path:path}", carrier.endpoint, methods=["GET", "POST", "DELETE"])])
    async with served(app) as base_url:
        carrier.base_url = base_url
        yield carrier


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


def tmf_error(status_code: int, reason: str, message: str | None = None) -> Response:
    body = {"code": "X", "reason": reason, "status": str(status_code), "@type": "Error"}
    if message:
        body["message"] = message
    return JSONResponse(body, status_code)


async def until_terminal(carrier: Tmf622Carrier, order: CarrierOrder) -> CarrierOrder:
    for _ in range(200):
        if order.is_terminal:
            return order
        await asyncio.sleep(0.01)
        order = await carrier.get(order.id)
    raise AssertionError(f"carrier order {order.id} still {order.state}")


async def test_submitting_twice_makes_one_carrier_order() -> None:
    async with simulated(latency_ms=60_000) as (carrier, look_behind):
        first = await carrier.submit(order_request("ord-7"))
        again = await carrier.submit(order_request("ord-7"))
        at_carrier = await look_behind("productOrder", externalId="ord-7")

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
    async with simulated(latency_ms=60_000) as (carrier, look_behind):
        submitted = await carrier.submit(order_request(icc="8947000000000000001"))
        stored = await look_behind(f"productOrder/{submitted.id}")

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


async def test_a_first_look_reads_an_unfinished_order_once_more_and_keeps_it_through_an_outage(
    scripted: ScriptedCarrier,
) -> None:
    acknowledged = CarrierOrder(
        id="c-1", external_id="o", state=CarrierOrderState.ACKNOWLEDGED, failure_reason=None
    )
    async with scripted(lambda _: tmf_error(503, "busy")) as (carrier, _):
        assert await look_again(carrier, acknowledged, after_s=0) is acknowledged
    done = {"id": "c-1", "state": "completed", "@type": "ProductOrder"}
    async with scripted(lambda _: JSONResponse(done)) as (carrier, _):
        assert (await look_again(carrier, acknowledged, after_s=0)).state is CarrierOrderState.COMPLETED


@pytest.mark.parametrize("status_code", [500, 502, 503, 504, 429, 408, 404, 401, 403])
async def test_transient_answers_are_unavailable(status_code: int, scripted: ScriptedCarrier) -> None:
    async with scripted(lambda _: tmf_error(status_code, "busy")) as (carrier, _):
        with pytest.raises(CarrierUnavailable) as raised:
            await carrier.submit(order_request())

    assert not isinstance(raised.value, CarrierResponseInvalid)


@asynccontextmanager
async def refusing() -> AsyncIterator[str]:
    """A carrier whose port is bound but not listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def stalling() -> AsyncIterator[str]:
    """A carrier that takes every request and answers none while the test runs."""
    released = asyncio.Event()

    async def endpoint(_: Request) -> Response:
        await released.wait()
        return Response(status_code=204)

    async with served(Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])])) as base_url:
        try:
            yield base_url
        finally:
            released.set()  # so that uvicorn, which waits for the request in hand, stops at once


@asynccontextmanager
async def not_speaking_http() -> AsyncIterator[str]:
    """A peer that reads the request, answers with bytes that are not HTTP and hangs up."""

    async def garble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"\x00\x01 not HTTP at all\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garble, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.mark.parametrize(
    ("carrier_away", "cause"),
    [
        (refusing, aiohttp.ClientConnectorError),
        (stalling, TimeoutError),
        (not_speaking_http, aiohttp.ClientResponseError),
    ],
    ids=["connection-refused", "read-timeout", "protocol-error"],
)
async def test_network_failures_are_unavailable(
    carrier_away: Callable[[], AbstractAsyncContextManager[str]], cause: type[Exception]
) -> None:
    async with carrier_away() as base_url, carrier_at(base_url, timeout_s=0.2) as carrier:
        with pytest.raises(CarrierUnavailable) as raised:
            await carrier.submit(order_request())

    assert isinstance(raised.value.__cause__, cause)


async def test_bad_request_is_rejected_with_the_tmf_reason(scripted: ScriptedCarrier) -> None:
    answer = tmf_error(400, "Invalid request", "productOrderItem.0.action: bad")
    async with scripted(lambda _: answer) as (carrier, _):
        with pytest.raises(CarrierRejected) as raised:
            await carrier.submit(order_request())

    assert raised.value.reason == "Invalid request: productOrderItem.0.action: bad"
    assert raised.value.status_code == 400


async def test_rejection_without_a_tmf_body_keeps_the_text(scripted: ScriptedCarrier) -> None:
    async with scripted(lambda _: PlainTextResponse("msisdn not ours", 422)) as (carrier, _):
        with pytest.raises(CarrierRejected, match="msisdn not ours"):
            await carrier.submit(order_request())


async def test_answer_that_is_not_a_product_order_is_invalid(scripted: ScriptedCarrier) -> None:
    async with scripted(lambda _: JSONResponse({"hello": "world"}, 201)) as (carrier, _):
        with pytest.raises(CarrierResponseInvalid):
            await carrier.submit(order_request())


async def test_conflict_on_a_repeated_external_id_finds_the_first_order(scripted: ScriptedCarrier) -> None:
    existing = {
        "id": "c-42",
        "state": "inProgress",
        "externalId": [{"id": "ord-1", "@type": "ExternalIdentifier"}],
        "@type": "ProductOrder",
    }

    def carrier_that_refuses_duplicates(request: Seen) -> Response:
        if request.method == "POST":
            return tmf_error(409, "Duplicate externalId")
        return JSONResponse([existing])

    async with scripted(carrier_that_refuses_duplicates) as (carrier, seen):
        found = await carrier.submit(order_request())

    assert [(request.method, request.query) for request in seen] == [
        ("POST", {}),
        ("GET", {"externalId": "ord-1"}),
    ]
    assert found == CarrierOrder(
        id="c-42", external_id="ord-1", state=CarrierOrderState.IN_PROGRESS, failure_reason=None
    )


async def test_a_listener_is_registered_with_a_hub_and_removed_again(scripted: ScriptedCarrier) -> None:
    def hub(request: Seen) -> Response:
        if request.method == "POST":
            return JSONResponse({"id": "hub-1", "callback": request.body["callback"], "@type": "Hub"}, 201)
        return Response(status_code=204)

    async with scripted(hub) as (carrier, seen):
        hub_id = await carrier.register_listener("http://worker:8091/?token=t")
        await carrier.unregister_listener(hub_id)

    assert hub_id == "hub-1"
    assert (seen[0].method, seen[0].path) == ("POST", "/tmf-api/productOrderingManagement/v5/hub")
    assert seen[0].body["callback"] == "http://worker:8091/?token=t"
    assert (seen[1].method, seen[1].path) == ("DELETE", "/tmf-api/productOrderingManagement/v5/hub/hub-1")


async def test_removing_a_hub_the_carrier_no_longer_knows_is_no_error(scripted: ScriptedCarrier) -> None:
    async with scripted(lambda _: tmf_error(404, "No such hub")) as (carrier, _):
        await carrier.unregister_listener("gone")


async def test_calls_share_one_kept_alive_connection_after_errors_too(scripted: ScriptedCarrier) -> None:
    done = {"id": "c-1", "state": "completed", "@type": "ProductOrder"}

    def answer(request: Seen) -> Response:
        return JSONResponse(done) if request.path.endswith("/c-1") else tmf_error(503, "busy")

    async with scripted(answer) as (carrier, seen):
        for _ in range(3):
            assert (await carrier.get("c-1")).state is CarrierOrderState.COMPLETED
            with pytest.raises(CarrierUnavailable, match="busy"):
                await carrier.get("c-2")

    assert len(seen) == 6
    assert len({request.client_port for request in seen}) == 1


async def test_a_redirect_is_not_followed(scripted: ScriptedCarrier) -> None:
    moved = Response(status_code=307, headers={"location": "/elsewhere"})
    async with scripted(lambda _: moved) as (carrier, seen):
        with pytest.raises(CarrierResponseInvalid):
            await carrier.submit(order_request())

    assert [request.method for request in seen] == ["POST"]


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


async def test_ending_a_service_is_a_tmf622_delete_the_simulator_completes() -> None:
    async with simulated(latency_ms=60_000) as (carrier, look_behind):
        request = order_request("ord-end", offering="Sky-10GB")
        ending = CarrierOrderRequest(
            order_id=request.order_id,
            msisdn=request.msisdn,
            product_offering_id=request.product_offering_id,
            action="delete",
        )
        submitted = await carrier.submit(ending)
        stored = await look_behind(f"productOrder/{submitted.id}")
    [item] = stored["productOrderItem"]
    assert (item["action"], item["productOffering"]["id"]) == ("delete", "Sky-10GB")
    async with simulated() as (carrier, _):
        final = await until_terminal(carrier, await carrier.submit(ending))
    assert final.state is CarrierOrderState.COMPLETED
