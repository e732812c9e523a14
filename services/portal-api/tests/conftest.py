"""The portal app in-process on a fresh PostgreSQL database and RabbitMQ vhost, seeded with the demo."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from mport_shared.db import create_engine, session_factory
from mport_shared.testing import MakeDatabase
from portal_api.main import create_app
from portal_api.seed import seed
from portal_api.settings import PortalSettings


@dataclass
class Portal:
    app: FastAPI
    database_url: str
    amqp_url: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver")


async def sign_in(client: httpx.AsyncClient, email: str) -> str:
    """Development sign-in; returns the CSRF token to echo in X-CSRF-Token."""
    response = await client.post("/auth/dev-login", data={"email": email})
    assert response.status_code == 200, response.text
    return client.cookies["csrftoken"]


MakePortal = Callable[..., Awaitable[Portal]]


@pytest.fixture
async def make_portal(make_database: MakeDatabase, amqp_url: str) -> AsyncIterator[MakePortal]:
    managers: list[LifespanManager] = []

    async def make(**overrides: object) -> Portal:
        database_url = await make_database("portal_api:migrations")
        engine = create_engine(database_url)
        await seed(session_factory(engine))
        await engine.dispose()
        values: dict[str, object] = {"PORTAL_MODE": "local", **overrides}
        settings = PortalSettings(database_url=database_url, amqp_url=amqp_url, **values)  # type: ignore[arg-type]
        app = create_app(settings)
        manager = LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        managers.append(manager)
        return Portal(app=app, database_url=database_url, amqp_url=amqp_url)

    yield make
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def portal(make_portal: MakePortal) -> Portal:
    return await make_portal()
