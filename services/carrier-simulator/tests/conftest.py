"""Real sockets for notification tests: the simulator and a TMF622 listener, each under uvicorn."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from carrier_simulator import SimulatorSettings, create_app
from fastapi import FastAPI, Request, Response
from mport_shared.testing import wait_for

BASE = "/tmf-api/productOrderingManagement/v5"
ORDERS = f"{BASE}/productOrder"
HUBS = f"{BASE}/hub"

# Quick retries, so a test of a listener that is away for a second sees several of them.
FAST_RETRIES: dict[str, Any] = {
    "notification_retry_initial_delay_s": 0.02,
    "notification_retry_max_delay_s": 0.1,
    "notification_timeout_s": 2.0,
}


def reserve_port() -> socket.socket:
    """A bound socket that does not listen yet: connections to its port are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def served(app: FastAPI, sock: socket.socket | None = None) -> AsyncIterator[int]:
    """Serve `app` (lifespan included) on a real socket; yields the port."""
    sock = sock or reserve_port()
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, ws="none", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("uvicorn stopped before it started")
        await asyncio.sleep(0.005)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


async def until(condition: Callable[[], object], what: str, timeout_s: float = 5.0) -> None:
    """Wait until a plain (not async) condition holds."""

    async def holds() -> bool:
        return bool(condition())

    await wait_for(holds, timeout_s=timeout_s, interval_s=0.005, what=what)


@dataclass
class Received:
    path: str
    query: str
    body: dict[str, Any]

    @property
    def order(self) -> dict[str, Any]:
        order: dict[str, Any] = self.body["event"]["productOrder"]
        return order


@dataclass
class Listener:
    """A TMF622 notification listener that keeps what it is sent, in arrival order."""

    received: list[Received] = field(default_factory=list)
    # Answer 500 to this many requests before accepting any.
    refuse_first: int = 0
    # Answer 500 to the notifications this says no to.
    refuse: Callable[[dict[str, Any]], bool] = lambda _body: False
    # A pause before answering each request: lets requests overlap.
    pause: Callable[[], float] = lambda: 0.0
    requests: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def notified(request: Request) -> Response:
            self.requests += 1
            body = await request.json()
            if self.requests <= self.refuse_first or self.refuse(body):
                return Response(status_code=500)
            delay = self.pause()
            if delay:
                await asyncio.sleep(delay)
            self.received.append(Received(request.url.path, request.url.query, body))
            return Response(status_code=204)

        return app

    def states(self, order_id: str, *, path: str | None = None) -> list[str]:
        return [
            r.order["state"]
            for r in self.received
            if r.order["id"] == order_id and (path is None or r.path == path)
        ]

    def count(self, path: str | None = None) -> int:
        return sum(1 for r in self.received if path is None or r.path == path)


@dataclass
class Carrier:
    """The simulator over real HTTP."""

    client: httpx.AsyncClient
    port: int

    async def register(self, callback: str) -> dict[str, Any]:
        response = await self.client.post(HUBS, json={"callback": callback})
        assert response.status_code == 201, response.text
        hub: dict[str, Any] = response.json()
        return hub

    async def order(self, external_id: str, offering: str = "Surf-5GB") -> dict[str, Any]:
        response = await self.client.post(ORDERS, json=order_body(external_id, offering))
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    async def get(self, order_id: str) -> dict[str, Any]:
        response = await self.client.get(f"{ORDERS}/{order_id}")
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        return order

    async def hubs(self) -> list[dict[str, Any]]:
        hubs: list[dict[str, Any]] = (await self.client.get("/simulator/hubs")).json()
        return hubs


def order_body(external_id: str = "ord-1", offering: str = "Surf-5GB") -> dict[str, Any]:
    return {
        "@type": "ProductOrder",
        "externalId": [
            {
                "id": external_id,
                "owner": "mPort",
                "externalIdentifierType": "order",
                "@type": "ExternalIdentifier",
            }
        ],
        "productOrderItem": [
            {
                "id": "1",
                "action": "add",
                "@type": "ProductOrderItem",
                "productOffering": {"id": offering, "@type": "ProductOfferingRef"},
                "product": {
                    "@type": "Product",
                    "productCharacteristic": [
                        {
                            "name": "msisdn",
                            "value": "4791234567",
                            "valueType": "string",
                            "@type": "StringCharacteristic",
                        }
                    ],
                },
            }
        ],
    }


RunCarrier = Callable[..., AbstractAsyncContextManager[Carrier]]
RunListener = Callable[..., AbstractAsyncContextManager[int]]


@pytest.fixture
def refusing_socket() -> Iterator[socket.socket]:
    """A port whose connections are refused until a listener is served on this socket."""
    sock = reserve_port()
    yield sock
    sock.close()


@pytest.fixture
def run_carrier() -> RunCarrier:
    """`async with run_carrier(**settings) as carrier`: a fresh simulator on a real port."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Carrier]:
        # Each order's whole life, its first state too, so the tests see every notification:
        # acknowledged at creation, inProgress at 10 ms, completed (or failed) at 20 ms. With
        # latency 0 an order would be done in the POST's answer, which changes no state.
        settings: dict[str, Any] = {
            "latency_ms": 20,
            "failure_rate": 0.0,
            "unavailable_rate": 0.0,
            "notify_on_create": True,
        }
        app = create_app(SimulatorSettings(**(settings | FAST_RETRIES | overrides)))
        async with served(app) as port:
            base_url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base_url, trust_env=False) as client:
                yield Carrier(client, port)

    return run


@pytest.fixture
def run_listener() -> RunListener:
    """`async with run_listener(listener, sock=None) as port`: the listener on a real port."""

    def run(listener: Listener, sock: socket.socket | None = None) -> AbstractAsyncContextManager[int]:
        return served(listener.app(), sock)

    return run
