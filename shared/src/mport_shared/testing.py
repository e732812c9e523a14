"""Pytest fixtures for integration tests: a fresh RabbitMQ vhost and fresh PostgreSQL databases.

With a Docker engine, testcontainers starts throw-away servers; without one (as on the CI machine)
the local servers are used, isolated by a vhost and databases made for this run and removed after."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

if TYPE_CHECKING:
    from mport_shared.devstack import Stack
    from mport_shared.testing_cluster import RabbitCluster

from mport_shared.db import migrate

LOCAL_AMQP = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
LOCAL_RABBITMQ_API = os.environ.get("TEST_RABBITMQ_API", "http://127.0.0.1:15672/api")
LOCAL_POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@functools.cache
def docker_engine_available() -> bool:
    """True where testcontainers can start containers (a reachable Docker engine)."""
    if os.environ.get("TEST_USE_LOCAL_SERVICES") == "1":
        return False
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


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
        except httpx.ConnectError:
            # no management plugin: fall back to rabbitmqctl on this machine
            _rabbitmqctl("add_vhost", vhost)
            _rabbitmqctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")
        self.set_delivery_limit(vhost)

    def set_delivery_limit(self, vhost: str, delivery_limit: int | None = None) -> None:
        """The work queues' delivery-limit policies, as the definitions set them (a test may lower
        the limit, to see a crashing message dead-lettered after a few deliveries)."""
        from mport_shared.messaging.topology import DELIVERY_LIMIT, delivery_limit_policies
        from mport_shared.ops.broker import put_delivery_limit_policies

        limit = DELIVERY_LIMIT if delivery_limit is None else delivery_limit
        try:
            put_delivery_limit_policies(
                self.api_url, vhost=vhost, auth=(self.user, self.password), delivery_limit=limit
            )
        except httpx.ConnectError:
            for policy in delivery_limit_policies(vhost=vhost, delivery_limit=limit):
                _rabbitmqctl(
                    "set_policy", "-p", vhost, "--apply-to", "queues", "--priority",
                    str(policy["priority"]), policy["name"], policy["pattern"],
                    json.dumps(policy["definition"]),
                )  # fmt: skip

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


@pytest.fixture
async def rabbit_cluster() -> AsyncIterator[RabbitCluster]:
    """A three-node RabbitMQ cluster of this test's own, on loopback ports of its own (see
    mport_shared.testing_cluster), torn down afterwards; skipped where no local RabbitMQ
    installation can run one."""
    from mport_shared.testing_cluster import ClusterError, RabbitCluster, unavailable_reason

    if (reason := unavailable_reason()) is not None:
        pytest.skip(f"no RabbitMQ cluster here: {reason}")
    # A second try with new ports and names: on a shared machine another process may take a port
    # between its choice and the node's start. A second failure is the test's error.
    for attempt in (1, 2):
        cluster = RabbitCluster(size=3)
        try:
            await cluster.start()
            break
        except ClusterError:
            await cluster.close()
            if attempt == 2:
                raise
        except BaseException:
            await cluster.close()
            raise
    try:
        yield cluster
    finally:
        await cluster.close()


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


# Fills a freshly migrated database (its URL): the demo seed, say. Run once, on the template.
Prepare = Callable[[str], Awaitable[None]]


class MakeDatabase(Protocol):
    """`make_database` fixture's callable: a fresh database's URL."""

    def __call__(
        self, script_location: str | None, /, *, prepare: Prepare | None = None
    ) -> Awaitable[str]: ...


@pytest.fixture
async def make_database(postgres_server: str) -> AsyncIterator[MakeDatabase]:
    """Create migrated, empty databases on demand: `await make_database("portal_api:migrations")`
    (or `make_database(None)` for a database with no tables).

    Each service's schema is migrated once per run into a template; every test gets a copy.
    `prepare` (the demo seed, say) is run once, on a template of its own, after the migration."""
    created: list[str] = []

    async def make(script_location: str | None, /, *, prepare: Prepare | None = None) -> str:
        template = (
            await _template_for(postgres_server, script_location, prepare) if script_location else "template0"
        )
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


_templates: dict[tuple[str, str, Prepare | None], str] = {}
_RUN_ID = uuid.uuid4().hex[:8]


async def _template_for(server: str, script_location: str, prepare: Prepare | None = None) -> str:
    key = (server, script_location, prepare)
    if key not in _templates:
        name = f"mport_tpl_{_RUN_ID}_{script_location.split('.')[0]}_{len(_templates)}"
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        url = _with_database(server, name, driver="asyncpg")
        await migrate(script_location, url)
        if prepare is not None:
            await prepare(url)
        _templates[key] = name
    return _templates[key]


@pytest.fixture(scope="session", autouse=True)
def _drop_templates() -> Iterator[None]:
    yield
    import asyncio

    async def drop() -> None:
        for (server, _, _), name in _templates.items():
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


class TcpProxy:
    """A TCP forwarder between a client and a server that a test can cut and restore,
    to take the broker away from one service without stopping the shared server."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones, as a dead broker would."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update({writer, up_writer})


def proxied_url(amqp_url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(amqp_url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float = 15.0,
    interval_s: float = 0.05,
    what: str = "",
) -> None:
    """Poll an async condition until it holds; fail with `what` when it does not in time."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}")
        await asyncio.sleep(interval_s)


async def close_connections_named(api: httpx.AsyncClient, vhost: str, connection_name: str) -> None:
    """Have the broker close every connection of `vhost` named `connection_name` (as an operator,
    or a node going away, does), once the management API `api` lists one."""

    async def named() -> list[str]:
        listed = (await api.get(f"/vhosts/{quote(vhost, safe='')}/connections")).json()
        return [
            c["name"]
            for c in listed
            if c.get("client_properties", {}).get("connection_name") == connection_name
        ]

    async def listed() -> bool:
        return bool(await named())

    await wait_for(listed, what=f"the management API to list the connection {connection_name}")
    for connection in await named():
        closed = await api.delete(f"/connections/{quote(connection, safe='')}")
        assert closed.status_code == 204, closed.text


SIMULATOR_NAMES = ("carrier-simulator", "sms-simulator", "identity-simulator")
_MIGRATIONS = {
    "portal-api": "portal_api:migrations",
    "order-worker": "order_worker:migrations",
    "sms-worker": "sms_worker:migrations",
    "payroll-worker": "payroll_worker:migrations",
}

MakeStack = Callable[..., Awaitable["Stack"]]


@pytest.fixture
async def make_stack(amqp_url: str, make_database: MakeDatabase) -> AsyncIterator[MakeStack]:
    """Start services as real processes on free ports, on this test's vhost and fresh databases:
    `stack = await make_stack("carrier-simulator", "order-worker", extra_env={...})`."""
    from mport_shared.devstack import Stack, StackConfig, free_port

    stacks: list[Stack] = []

    async def make(*names: str, extra_env: dict[str, dict[str, str]] | None = None) -> Stack:
        databases = {name: await make_database(script) for name, script in _MIGRATIONS.items()}
        config = StackConfig(
            amqp_url=amqp_url,
            database_urls=databases,
            ports={n: free_port() for n in (*SIMULATOR_NAMES, *_MIGRATIONS)},
            extra_env={"portal-api": {"PORTAL_MODE": "local"}, **(extra_env or {})},
            log_dir=Path("test-artifacts/logs") / uuid.uuid4().hex[:8],
        )
        stack = Stack(config)
        stacks.append(stack)
        # The databases are already migrated (from templates); only the portal needs its seed.
        if "portal-api" in names or not names:
            await stack.seed_portal()
        await stack.start(*names)
        return stack

    yield make
    for stack in stacks:
        await stack.stop()


@contextlib.asynccontextmanager
async def served(app: Callable[..., Awaitable[None]]) -> AsyncIterator[str]:
    """Any ASGI app (its lifespan included) behind uvicorn on a free loopback port, in this event
    loop; yields its base URL, e.g. `http://127.0.0.1:40123`. For clients that have no in-process
    transport (aiohttp) and for what needs a real socket."""
    import socket

    import uvicorn

    # Bound before uvicorn starts, so the port is ours: no race with another test taking it.
    # IPPROTO_TCP said outright: asyncio turns Nagle off only on sockets that say so, and with
    # Nagle on, each answer on a kept-alive connection waited ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, ws="none", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise AssertionError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


_SMS_CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


async def latest_sms_code(client: httpx.AsyncClient, simulator_url: str, msisdn: str) -> str | None:
    """The one-time code in the newest SMS the SMS simulator "sent" to `msisdn`, as a developer
    reads it at `/messages`; None when none has gone there yet."""
    answer = await client.get(f"{simulator_url.rstrip('/')}/messages", params={"to": msisdn})
    answer.raise_for_status()
    for message in reversed(answer.json()):
        found = _SMS_CODE.search(str(message.get("text", "")))
        if found:
            return found[1]
    return None


_SIGN_IN_ID = re.compile(r'name="sign_in" value="([^"]+)"')
_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


async def sign_in_with_work_account(
    client: httpx.AsyncClient, portal_url: str, email: str, *, next_path: str = "/abonnement"
) -> httpx.Response:
    """Sign in with "Bruk jobbkonto" as a browser does against the identity simulator: the portal
    sends it to the simulator's sign-in page, the person with `email` is picked there, and the
    simulator sends it back to the portal's callback. Returns the callback's answer (a 303 to
    `next_path` when the portal signed the person in)."""
    login = await client.get(f"{portal_url}/auth/oidc/login", params={"neste": next_path})
    assert login.status_code == 302, login.text
    page = await client.get(login.headers["location"])
    assert page.status_code == 200, page.text
    button = re.search(
        rf'name="person" value="([^"]+)">[^<]*<span class="email">{re.escape(email)}</span>', page.text
    )
    sign_in, action = _SIGN_IN_ID.search(page.text), _FORM_ACTION.search(page.text)
    assert button, f"{email} is not on the sign-in page:\n{page.text}"
    assert sign_in, page.text
    assert action, page.text
    decision = await client.post(
        urljoin(str(page.url), html.unescape(action[1])),
        data={"sign_in": html.unescape(sign_in[1]), "person": html.unescape(button[1])},
    )
    assert decision.status_code == 303, decision.text
    return await client.get(decision.headers["location"])


async def order_body(client: httpx.AsyncClient, product_code: str, **details: str) -> dict[str, object]:
    """The body of POST /api/v1/orders as the page script sends it for the signed-in employee: with
    their acceptance of the salary deduction the catalog states (arbeidsmiljøloven § 14-15),
    when the product costs them anything, in the confirm dialog's words."""
    body: dict[str, object] = {"product_code": product_code, "details": details}
    catalog = (await client.get("/api/v1/catalog")).json()
    pays = next((int(p["employee_pays_ore"]) for p in catalog if p["code"] == product_code), 0)
    if pays:
        text = f"Dette medfører lønnstrekk: {pays // 100},{pays % 100:02d} kr."
        body["accept_deduction"] = {"amount_ore": pays, "text": text}
    return body
