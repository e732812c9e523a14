"""The Kannel adapter: the request it makes, and how it reads every kind of answer, against the
SMS gateway simulator (in process, over httpx's ASGI transport) and scripted transports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sms_simulator import SimulatorSettings, create_app
from sms_worker.adapters.gateway import (
    DlrUrl,
    GatewayOutcomeUnknown,
    GatewayRejected,
    GatewayUnavailable,
    KannelGateway,
)

PASSWORD = "s3cret-pw"
DLR = DlrUrl(base_url="http://worker:8092", path="/dlr", secret=SecretStr("tok"))
TEXT = "Din engangskode for mPort er 493817. Den gjelder til 14:35."


def gateway_on(client: httpx.AsyncClient, *, password: str = PASSWORD) -> KannelGateway:
    return KannelGateway(
        client,
        url="http://gateway/cgi-bin/sendsms",
        username="mport",
        password=SecretStr(password),
        sender="mPort",
        dlr_url=DLR,
    )


@pytest.fixture
async def simulator() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SimulatorSettings(password=SecretStr(PASSWORD), dlr_delay_ms=60_000))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway"
        ) as client,
    ):
        yield client


def scripted(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_the_request_is_kannel_sendsms_with_a_url_encoded_dlr_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, text="0: Accepted for delivery")

    async with scripted(handler) as client:
        result = await gateway_on(client).send(to="4748123456", text=TEXT, delivery_id="v-1")
    assert result.gateway_message_id == "v-1"
    assert not result.queued
    [request] = seen
    assert request.method == "GET"
    assert request.url.path == "/cgi-bin/sendsms"
    # Encoded once more in the query, so Kannel's escapes arrive as %d and %A.
    encoded = "http%3A%2F%2Fworker%3A8092%2Fdlr%3Ftoken%3Dtok%26id%3Dv-1%26type%3D%25d%26reply%3D%25A"
    assert f"dlr-url={encoded}" in str(request.url)
    query = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
    assert query == {
        "username": "mport",
        "password": PASSWORD,
        "from": "mPort",
        "to": "4748123456",
        "text": TEXT,
        "charset": "UTF-8",
        "coding": "0",
        "dlr-mask": "31",
        "dlr-url": "http://worker:8092/dlr?token=tok&id=v-1&type=%d&reply=%A",
    }


async def test_text_beyond_the_gsm_alphabet_goes_as_ucs2() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, text="0: Accepted for delivery")

    async with scripted(handler) as client:
        await gateway_on(client).send(to="4748123456", text="Kode 1 ✓", delivery_id="v")
    assert seen[0].url.params["coding"] == "2"


async def test_accepted_by_the_simulator_and_kept_there(simulator: httpx.AsyncClient) -> None:
    result = await gateway_on(simulator).send(to="4748123456", text=TEXT, delivery_id="v-2")
    assert result.gateway_message_id == "v-2"
    [message] = (await simulator.get("/messages")).json()
    assert (message["to"], message["from"], message["text"]) == ("4748123456", "mPort", TEXT)


async def test_queued_for_later_delivery_is_sent() -> None:
    async with scripted(lambda _: httpx.Response(202, text="3: Queued for later delivery")) as client:
        result = await gateway_on(client).send(to="4748123456", text=TEXT, delivery_id="v")
    assert result.queued


async def test_a_wrong_password_is_a_permanent_rejection_that_names_neither_it_nor_the_text(
    simulator: httpx.AsyncClient,
) -> None:
    with pytest.raises(GatewayRejected) as caught:
        await gateway_on(simulator, password="wrong-pw").send(to="4748123456", text=TEXT, delivery_id="v")
    assert caught.value.reason == "gateway answered 403: Authorization failed for sendsms"
    assert "wrong-pw" not in str(caught.value)
    assert "493817" not in str(caught.value)


async def test_not_routable_is_a_permanent_rejection(simulator: httpx.AsyncClient) -> None:
    await simulator.put("/simulator/config", json={"reject_prefixes": ["4748"]})
    with pytest.raises(GatewayRejected, match="Not routable"):
        await gateway_on(simulator).send(to="4748123456", text=TEXT, delivery_id="v")


async def test_a_missing_receiver_is_a_permanent_rejection(simulator: httpx.AsyncClient) -> None:
    with pytest.raises(GatewayRejected, match="400: Missing receiver"):
        await gateway_on(simulator).send(to="", text=TEXT, delivery_id="v")


async def test_temporal_failure_is_temporary(simulator: httpx.AsyncClient) -> None:
    await simulator.put("/simulator/config", json={"unavailable_rate": 1.0})
    with pytest.raises(GatewayUnavailable, match="503: Temporal failure"):
        await gateway_on(simulator).send(to="4748123456", text=TEXT, delivery_id="v")
    assert (await simulator.get("/messages")).json() == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("refused"), GatewayUnavailable),
        (httpx.ConnectTimeout("slow"), GatewayUnavailable),
        (httpx.PoolTimeout("busy"), GatewayUnavailable),
        (httpx.WriteError("broken"), GatewayUnavailable),
        (httpx.ReadTimeout("no answer"), GatewayOutcomeUnknown),
        (httpx.RemoteProtocolError("closed"), GatewayOutcomeUnknown),
    ],
)
async def test_transport_errors(error: Exception, expected: type[Exception]) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        raise error

    async with scripted(handler) as client:
        with pytest.raises(expected) as caught:
            await gateway_on(client).send(to="4748123456", text=TEXT, delivery_id="v")
    assert PASSWORD not in str(caught.value)
