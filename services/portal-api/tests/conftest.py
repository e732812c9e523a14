"""The portal app in-process on a fresh PostgreSQL database and RabbitMQ vhost, seeded with the demo."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from mport_shared.db import create_engine, session_factory
from mport_shared.events import (
    Billing,
    DeductionLine,
    DeductionLineKind,
    EmployeeCharge,
    Envelope,
    OrderKind,
    OrderSnapshot,
    envelop,
)
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.topology import declare_exchange
from mport_shared.testing import MakeDatabase, order_body
from portal_api.auth.sessions import Clock, utc_now
from portal_api.main import create_app
from portal_api.seed import DEMO_COMPANY_ID, KARI, seed
from portal_api.settings import PortalSettings
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@dataclass
class Portal:
    app: FastAPI
    database_url: str
    amqp_url: str
    # Ends the app's lifespan before the test does (the fixture's teardown then skips it).
    stop: Callable[[], Awaitable[None]] = field(default=lambda: _nothing())

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver")


async def seed_demo(database_url: str) -> None:
    """The demo seed, on a migrated database (make_database's `prepare`: once, on its template)."""
    engine = create_engine(database_url)
    try:
        await seed(session_factory(engine))
    finally:
        await engine.dispose()


@asynccontextmanager
async def seeded(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a migrated database, seeded with the demo."""
    engine = create_engine(database_url)
    factory = session_factory(engine)
    try:
        await seed(factory)
        yield factory
    finally:
        await engine.dispose()


async def sign_in(client: httpx.AsyncClient, email: str) -> str:
    """Development sign-in; returns the CSRF token to echo in X-CSRF-Token."""
    response = await client.post("/auth/dev-login", data={"email": email})
    assert response.status_code == 200, response.text
    return client.cookies["csrftoken"]


MakePortal = Callable[..., Awaitable[Portal]]


async def _nothing() -> None:
    return None


@dataclass
class FakeClock:
    """The portal's clock in a test: time moves only when the test says so."""

    now: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 8, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
async def make_portal(make_database: MakeDatabase, amqp_url: str) -> AsyncIterator[MakePortal]:
    managers: list[LifespanManager] = []

    async def make(*, clock: Clock = utc_now, **overrides: object) -> Portal:
        database_url = await make_database("portal_api:migrations", prepare=seed_demo)
        # No payroll-worker unless a test serves one: nothing answers on port 9 (discard), so a
        # payroll-worker of a `make run` on 8093 is never asked.
        values: dict[str, object] = {
            "PORTAL_MODE": "local",
            "PAYROLL_WORKER_URL": "http://127.0.0.1:9",
            **overrides,
        }
        settings = PortalSettings(database_url=database_url, amqp_url=amqp_url, **values)  # type: ignore[arg-type]
        app = create_app(settings, clock=clock)
        manager = LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        managers.append(manager)

        async def stop() -> None:
            managers.remove(manager)
            await manager.__aexit__(None, None, None)

        return Portal(app=app, database_url=database_url, amqp_url=amqp_url, stop=stop)

    yield make
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def portal(make_portal: MakePortal) -> Portal:
    return await make_portal()


# ---- helpers for tests that play the workers' part on the bus ----


async def accepting(client: httpx.AsyncClient, product_code: str) -> dict[str, Any]:
    """What the page script adds to an order's body: the signed-in employee's acceptance of the
    deduction the catalog states for the product (nothing when they pay nothing)."""
    body = await order_body(client, product_code)
    return {"accept_deduction": body["accept_deduction"]} if "accept_deduction" in body else {}


async def place_order(
    client: httpx.AsyncClient, csrf: str, product_code: str, **details: str
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/orders",
        json={"product_code": product_code, "details": details, **(await accepting(client, product_code))},
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    order: dict[str, Any] = response.json()
    return order


def snapshot(order: dict[str, Any], employee_id: uuid.UUID = KARI.id) -> OrderSnapshot:
    return OrderSnapshot(
        order_id=uuid.UUID(order["id"]),
        company_id=DEMO_COMPANY_ID,
        employee_id=employee_id,
        employee_number="1001",
        msisdn=order["msisdn"],
        product_code=order["product_code"],
        carrier_product_code=order["carrier_product_code"],
        kind=OrderKind(order["kind"]),
        action="add",
        employee_charge=EmployeeCharge(
            amount_ore=order["employee_charge_ore"], billing=Billing(order["billing"])
        ),
        placed_at=datetime.now(UTC),
    )


async def publish(amqp_url: str, *envelopes: Envelope[Any]) -> None:
    connection = await connect(amqp_url, name="test-publisher")
    try:
        exchange = await declare_exchange(await confirming_channel(connection))
        for envelope in envelopes:
            await exchange.publish(
                aio_pika.Message(envelope.model_dump_json().encode(), type=envelope.type),
                routing_key=envelope.type,
            )
    finally:
        await connection.close()


def worker_event(payload: Any) -> Envelope[Any]:
    return envelop(payload, source="/mport/order-worker", correlation_id="test")


def deduction_line(
    order_id: uuid.UUID | str,
    *,
    amount_ore: int = 14_900,
    period: str = "2026-12",
    kind: DeductionLineKind = DeductionLineKind.ONE_OFF,
    employee_id: uuid.UUID = KARI.id,
    employee_number: str = "1001",
    company_id: uuid.UUID = DEMO_COMPANY_ID,
    product_code: str = "ekstra-data-15gb",
    text: str = "Ekstra Data 15GB 01.12.2026",
) -> DeductionLine:
    """A line as the payroll-worker records it (for Kari of Demo Bedrift unless told otherwise)."""
    return DeductionLine(
        line_id=uuid.uuid4(),
        company_id=company_id,
        employee_id=employee_id,
        employee_number=employee_number,
        order_id=uuid.UUID(str(order_id)),
        product_code=product_code,
        kind=kind,
        wage_type="5200",
        amount_ore=amount_ore,
        quantity=1,
        period=period,
        consent_id=uuid.uuid4(),
        text=text,
    )


def payroll_event(payload: Any) -> Envelope[Any]:
    return envelop(payload, source="/mport/payroll-worker", correlation_id="test")
