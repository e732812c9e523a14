"""Pytest fixtures for integration tests: a fresh RabbitMQ vhost and fresh PostgreSQL databases.

With a Docker engine, testcontainers starts throw-away servers; without one (as on the CI machine)
the local servers are used, isolated by a vhost and databases made for this run and removed after."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from mport_shared.db import migrate

LOCAL_AMQP = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
LOCAL_RABBITMQ_API = os.environ.get("TEST_RABBITMQ_API", "http://127.0.0.1:15672/api")
LOCAL_POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def docker_engine_available() -> bool:
    if os.environ.get("TEST_USE_LOCAL_SERVICES") == "1":
        return False
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@dataclass(frozen=True)
class RabbitServer:
    amqp_url: str  # without vhost
    api_url: str
    user: str
    password: str

    def vhost_url(self, vhost: str) -> str:
        parts = urlsplit(self.amqp_url)
        return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))

    def create_vhost(self, vhost: str) -> None:
        try:
            with httpx.Client(auth=(self.user, self.password), timeout=10) as api:
                name = quote(vhost, safe="")
                api.put(f"{self.api_url}/vhosts/{name}").raise_for_status()
                api.put(
                    f"{self.api_url}/permissions/{name}/{self.user}",
                    json={"configure": ".*", "write": ".*", "read": ".*"},
                ).raise_for_status()
            return
        except httpx.ConnectError:
            pass  # no management plugin: fall back to rabbitmqctl on this machine
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        try:
            with httpx.Client(auth=(self.user, self.password), timeout=30) as api:
                api.delete(f"{self.api_url}/vhosts/{quote(vhost, safe='')}")
            return
        except httpx.ConnectError:
            pass
        _rabbitmqctl("delete_vhost", vhost)


def _rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, "-q", *args], check=True, capture_output=True, timeout=60)  # noqa: S603


@pytest.fixture(scope="session")
def rabbit_server() -> Iterator[RabbitServer]:
    if docker_engine_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management").with_exposed_ports(5672, 15672) as c:
            host = c.get_container_host_ip()
            yield RabbitServer(
                amqp_url=f"amqp://guest:guest@{host}:{c.get_exposed_port(5672)}/",
                api_url=f"http://{host}:{c.get_exposed_port(15672)}/api",
                user="guest",
                password="guest",  # noqa: S106 - the throw-away container's default
            )
        return
    parts = urlsplit(LOCAL_AMQP)
    yield RabbitServer(
        amqp_url=urlunsplit(parts._replace(path="/")),
        api_url=LOCAL_RABBITMQ_API,
        user=parts.username or "guest",
        password=parts.password or "guest",
    )


@pytest.fixture
def amqp_url(rabbit_server: RabbitServer) -> Iterator[str]:
    """A vhost of this test's own, deleted afterwards with everything in it."""
    vhost = f"mport-test-{uuid.uuid4().hex[:12]}"
    rabbit_server.create_vhost(vhost)
    try:
        yield rabbit_server.vhost_url(vhost)
    finally:
        rabbit_server.delete_vhost(vhost)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """An admin URL (asyncpg DSN) of a PostgreSQL server the tests may create databases on."""
    if docker_engine_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as c:
            yield c.get_connection_url()
        return
    yield LOCAL_POSTGRES


def _with_database(admin_url: str, database: str, *, driver: str) -> str:
    parts = urlsplit(admin_url)
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return urlunsplit(parts._replace(scheme=scheme, path="/" + database))


MakeDatabase = Callable[[str], Awaitable[str]]


@pytest.fixture
async def make_database(postgres_server: str) -> AsyncIterator[MakeDatabase]:
    """Create migrated, empty databases on demand: `await make_database("portal_api.migrations")`.

    Each service's schema is migrated once per run into a template; every test gets a copy."""
    created: list[str] = []

    async def make(script_location: str) -> str:
        template = await _template_for(postgres_server, script_location)
        name = f"mport_test_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(postgres_server)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await admin.close()
        created.append(name)
        return _with_database(postgres_server, name, driver="asyncpg")

    yield make
    admin = await asyncpg.connect(postgres_server)
    try:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


_templates: dict[tuple[str, str], str] = {}
_RUN_ID = uuid.uuid4().hex[:8]


async def _template_for(server: str, script_location: str) -> str:
    key = (server, script_location)
    if key not in _templates:
        name = f"mport_tpl_{_RUN_ID}_{script_location.split('.')[0]}"
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        await migrate(script_location, _with_database(server, name, driver="asyncpg"))
        _templates[key] = name
    return _templates[key]


@pytest.fixture(scope="session", autouse=True)
def _drop_templates() -> Iterator[None]:
    yield
    import asyncio

    async def drop() -> None:
        for (server, _), name in _templates.items():
            admin = await asyncpg.connect(server)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()

    if _templates:
        # A container server may already be gone, and its databases with it.
        with contextlib.suppress(OSError):
            asyncio.run(drop())
    _templates.clear()
