"""`make bench`: throughput, latency, relay rate, intake and memory of the real system, as ratios.

Everything runs on this machine against the local RabbitMQ and PostgreSQL, in a vhost and
databases made for the run and removed afterwards. Each figure is printed next to the ceiling
it is compared with, measured in the same run, and all are written to bench-results/*.json."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
from mport_shared.db import create_engine, migrate, session_factory
from mport_shared.devstack import Stack, StackConfig, free_port
from mport_shared.events import OrderCompleted, OrderSubmitted, envelop
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.outbox import OutboxRelay, add_to_outbox
from mport_shared.messaging.publisher import Publisher
from mport_shared.messaging.tables import messaging_tables
from mport_shared.messaging.topology import EXCHANGE, declare_exchange
from mport_shared.testing import LOCAL_AMQP, LOCAL_POSTGRES, LOCAL_RABBITMQ_API, RabbitServer
from sqlalchemy import MetaData

RELAY_MESSAGES = int(os.environ.get("BENCH_RELAY_MESSAGES", "5000"))
LOAD_ORDERS = int(os.environ.get("BENCH_ORDERS", "1500"))
SLOW_CARRIER_MS = int(os.environ.get("BENCH_SLOW_CARRIER_MS", "2000"))
LOAD_CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
LATENCY_ORDERS = int(os.environ.get("BENCH_LATENCY_ORDERS", "60"))
INTAKE_SECONDS = float(os.environ.get("BENCH_INTAKE_SECONDS", "5"))
INTAKE_ROUNDS = int(os.environ.get("BENCH_INTAKE_ROUNDS", "2"))
# BENCH_INTAKE_MAX_BACKLOG=0 measures the pipeline with the portal's intake gate off (intake.py).
INTAKE_GATE = (
    {"INTAKE_MAX_BACKLOG": os.environ["BENCH_INTAKE_MAX_BACKLOG"]}
    if "BENCH_INTAKE_MAX_BACKLOG" in os.environ
    else {}
)
REPO_ROOT = Path(__file__).resolve().parents[2]
BARE_INSERT = "bare-insert"  # the intake ceiling's scratch database (tests/bench/bare_insert.py)
SERVICES = {
    "portal-api": "portal_api:migrations",
    "order-worker": "order_worker:migrations",
    "sms-worker": "sms_worker:migrations",
    "payroll-worker": "payroll_worker:migrations",
}


@asynccontextmanager
async def scratch() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A vhost and one fresh database per service, removed afterwards."""
    run = uuid.uuid4().hex[:8]
    rabbit = RabbitServer(amqp_url=LOCAL_AMQP, api_url=LOCAL_RABBITMQ_API, user="guest", password="guest")
    vhost = f"mport-bench-{run}"
    rabbit.create_vhost(vhost)
    admin = await asyncpg.connect(LOCAL_POSTGRES)
    databases: dict[str, str] = {}
    try:
        for name, script in SERVICES.items():
            db = f"mport_bench_{run}_{name.replace('-', '_')}"
            await admin.execute(f'CREATE DATABASE "{db}"')
            url = (
                LOCAL_POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + db
            )
            await migrate(script, url)
            databases[name] = url
        bare_db = f"mport_bench_{run}_bare_insert"
        await admin.execute(f'CREATE DATABASE "{bare_db}"')
        databases[BARE_INSERT] = LOCAL_POSTGRES.rsplit("/", 1)[0] + "/" + bare_db
        yield rabbit.vhost_url(vhost), databases
    finally:
        for url in databases.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        await admin.close()
        rabbit.delete_vhost(vhost)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bench_relay(amqp_url: str, database_url: str) -> dict[str, Any]:
    """The outbox relay's publish rate against a plain pipelined confirmed-publish loop."""
    connection = await connect(amqp_url, name="bench")
    channel = await confirming_channel(connection)
    exchange = await declare_exchange(channel)
    queue = await channel.declare_queue("bench-sink", durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(EXCHANGE, routing_key=OrderSubmitted.event_type)
    body = (
        envelop(
            OrderSubmitted(order_id=uuid.uuid4(), carrier_order_id="c", submitted_at=datetime.now(UTC)),
            source="/bench",
            correlation_id="c",
        )
        .model_dump_json()
        .encode()
    )

    # Ceiling: plain aio-pika, persistent messages, confirms pipelined in windows of 500.
    started = time.perf_counter()
    for window in range(0, RELAY_MESSAGES, 500):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=OrderSubmitted.event_type,
                )
                for _ in range(min(500, RELAY_MESSAGES - window))
            )
        )
    plain_rate = RELAY_MESSAGES / (time.perf_counter() - started)
    await queue.purge()

    # The relay: rows committed first, then published, confirmed and marked sent.
    metadata = MetaData()
    tables = messaging_tables(metadata)
    engine = create_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    for window in range(0, RELAY_MESSAGES, 1000):
        async with sessions.begin() as session:
            for _ in range(min(1000, RELAY_MESSAGES - window)):
                payload = OrderSubmitted(
                    order_id=uuid.uuid4(), carrier_order_id="c", submitted_at=datetime.now(UTC)
                )
                await add_to_outbox(
                    session, tables.outbox, envelop(payload, source="/bench", correlation_id="c")
                )
    relay = OutboxRelay(  # as ServiceRuntime builds it
        service="bench",
        sessions=sessions,
        outbox=tables.outbox,
        publisher=Publisher(exchange, channel),
    )
    started = time.perf_counter()
    published = 0
    while (n := await relay.publish_pending()) > 0:
        published += n
    relay_rate = published / (time.perf_counter() - started)
    await queue.purge()
    await engine.dispose()
    await connection.close()
    return {
        "messages": RELAY_MESSAGES,
        "relay_per_s": round(relay_rate, 1),
        "plain_aio_pika_per_s": round(plain_rate, 1),
        "ratio": round(relay_rate / plain_rate, 3),
        "target_ratio": 0.30,
    }


# What make bench orders as Kari: Ekstra Data 1GB, with her acceptance of the deduction the page's
# confirm dialog states (the portal refuses an order the employee pays for without it).
ORDER = {
    "product_code": "ekstra-data-1gb",
    "accept_deduction": {"amount_ore": 2_900, "text": "Dette medfører lønnstrekk: 29,00 kr."},
}


async def sign_in(client: httpx.AsyncClient) -> str:
    response = await client.post("/auth/dev-login", data={"email": "kari.nordmann@demo.no"})
    response.raise_for_status()
    return client.cookies["csrftoken"]


async def place_and_wait(client: httpx.AsyncClient, csrf: str, *, poll_s: float) -> tuple[float, float]:
    """POST an order, then poll until it completes; returns (accepted_at, completed_at)."""
    started = time.perf_counter()
    response = await client.post(
        "/api/v1/orders",
        json=ORDER,
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
    )
    if response.status_code != 202:
        raise RuntimeError(f"order refused: {response.status_code} {response.text}")
    accepted = time.perf_counter()
    order_id = response.json()["id"]
    while True:
        status = (await client.get(f"/api/v1/orders/{order_id}")).json()["status"]
        if status == "completed":
            return accepted - started, time.perf_counter() - started
        if status == "failed":
            raise RuntimeError(f"order {order_id} failed")
        await asyncio.sleep(poll_s)


async def drive(send: Callable[[], Awaitable[httpx.Response]], *, seconds: float) -> tuple[int, float]:
    """Keep LOAD_CONCURRENCY requests in flight for `seconds`, each sent as soon as the last one
    of its lane is answered; returns (accepted, elapsed). Anything but 202 stops the bench."""
    deadline = time.perf_counter() + seconds
    accepted = 0

    async def lane() -> None:
        nonlocal accepted
        while time.perf_counter() < deadline:
            response = await send()
            if response.status_code != 202:
                raise RuntimeError(f"refused: {response.status_code} {response.text[:300]}")
            accepted += 1

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(LOAD_CONCURRENCY)))
    return accepted, time.perf_counter() - started


@asynccontextmanager
async def bare_insert_app(database_url: str) -> AsyncIterator[str]:
    """tests/bench/bare_insert.py as its own uvicorn process on a free port; yields its URL."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "HTTP_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.bare_insert", cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2) as probe:
            deadline = time.monotonic() + 30
            while True:
                if process.returncode is not None:
                    err = await process.stderr.read() if process.stderr else b""
                    raise RuntimeError(f"bare insert app exited:\n{err.decode(errors='replace')}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get(f"{url}/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError("bare insert app was not ready within 30 s")
                await asyncio.sleep(0.1)
        yield url
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


async def bench_intake(portal: httpx.AsyncClient, csrf: str, bare_url: str, *, bare: str) -> dict[str, Any]:
    """Accepted POST /api/v1/orders per second against the bare insert app, same client and
    concurrency, rounds interleaved (portal, bare, portal, bare, …) so that noise from anything
    else on the machine falls on both. Only the POSTs are timed: nothing waits for completion."""

    def new_key() -> dict[str, str]:
        return {"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())}

    limits = httpx.Limits(max_connections=LOAD_CONCURRENCY * 2)
    order = ORDER
    async with httpx.AsyncClient(base_url=bare_url, timeout=30, limits=limits) as bare:
        for _ in range(LOAD_CONCURRENCY * 4):  # warm up its pool and our connections to it
            (await bare.post("/api/v1/orders", json=order, headers=new_key())).raise_for_status()
        portal_rounds: list[tuple[int, float]] = []
        bare_rounds: list[tuple[int, float]] = []
        for _ in range(INTAKE_ROUNDS):
            portal_rounds.append(
                await drive(
                    lambda: portal.post("/api/v1/orders", json=order, headers=new_key()),
                    seconds=INTAKE_SECONDS,
                )
            )
            bare_rounds.append(
                await drive(
                    lambda: bare.post("/api/v1/orders", json=order, headers=new_key()),
                    seconds=INTAKE_SECONDS,
                )
            )

    def rate(rounds: list[tuple[int, float]]) -> float:
        return sum(n for n, _ in rounds) / sum(t for _, t in rounds)

    portal_rate, bare_rate = rate(portal_rounds), rate(bare_rounds)
    return {
        "concurrency": LOAD_CONCURRENCY,
        "seconds_per_round": INTAKE_SECONDS,
        "rounds": INTAKE_ROUNDS,
        "accepted_per_s": round(portal_rate, 1),
        "bare_insert_per_s": round(bare_rate, 1),
        "ratio": round(portal_rate / bare_rate, 3),
        "target_ratio": 0.40,
        "accepted_per_s_by_round": [round(n / t, 1) for n, t in portal_rounds],
        "bare_insert_per_s_by_round": [round(n / t, 1) for n, t in bare_rounds],
        "conditions": "order-worker stopped, so that only the portal (with its outbox relay) "
        f"and the bare app compete with the load client; bare app: FastAPI + {bare}",
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU time of a process (and of its waited-for children), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command: state is field 3, utime 14, stime 15, cutime 16, cstime 17 (1-based).
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def server_pids(name: str) -> list[int]:
    """The processes of a locally running server (RabbitMQ's beam.smp, PostgreSQL's postgres)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
    return pids


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each service, the broker, the database and this load client."""
    snapshot = {name: cpu_seconds(process.pid) for name, process in stack.processes.items()}
    snapshot["rabbitmq"] = sum(cpu_seconds(pid) for pid in server_pids("beam.smp"))
    # PostgreSQL's backends come and go; the postmaster collects the time of those that ended.
    snapshot["postgresql"] = sum(cpu_seconds(pid, children=True) for pid in server_pids("postgres"))
    snapshot["load client"] = cpu_seconds(os.getpid())
    return snapshot


async def set_carrier_latency(stack: Stack, latency_ms: int) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.put(
            f"{stack.url('carrier-simulator')}/simulator/config", json={"latency_ms": latency_ms}
        )
        response.raise_for_status()


async def sustained_load(
    stack: Stack, client: httpx.AsyncClient, csrf: str, amqp_url: str, *, peak: dict[str, float]
) -> dict[str, Any]:
    """LOAD_ORDERS POSTs at LOAD_CONCURRENCY, as fast as they are accepted, with completions timed
    off the bus (polling the API would itself be the load). Keeping up compares the rate at which
    orders complete with the rate at which they were accepted, each over its own span, so a slow
    carrier's constant delay does not count against it; only falling behind does."""
    completed_at: dict[str, float] = {}
    all_completed = asyncio.Event()
    probe = await connect(amqp_url, name="bench-probe")
    probe_channel = await probe.channel()
    probe_queue = await probe_channel.declare_queue(exclusive=True)
    await probe_queue.bind(EXCHANGE, routing_key=OrderCompleted.event_type)

    async def on_completed(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        completed_at[json.loads(message.body)["data"]["order"]["order_id"]] = time.perf_counter()
        await message.ack()
        if len(completed_at) >= LOAD_ORDERS:
            all_completed.set()

    await probe_queue.consume(on_completed)
    accepted_at: dict[str, tuple[float, float]] = {}
    remaining = iter(range(LOAD_ORDERS))
    refused = 0

    async def worker() -> None:
        nonlocal refused
        for _ in remaining:
            started = time.perf_counter()
            headers = {"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())}
            while (
                response := await client.post("/api/v1/orders", json=ORDER, headers=headers)
            ).status_code == 503:
                # Held back for longer than the portal waits (intake.py): as a client should, the
                # same request again after Retry-After.
                refused += 1
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            response.raise_for_status()
            accepted_at[response.json()["id"]] = (started, time.perf_counter())

    async def sample_memory() -> None:
        while True:
            for n, p in stack.processes.items():
                peak[n] = max(peak.get(n, 0.0), rss_mb(p.pid))
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample_memory())
    cpu_before = cpu_snapshot(stack)
    await asyncio.gather(*(worker() for _ in range(LOAD_CONCURRENCY)))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_completed.wait(), 120)
    cpu_after = cpu_snapshot(stack)
    sampler.cancel()
    await probe.close()
    done = completed_at.keys() & accepted_at.keys()
    if len(done) < LOAD_ORDERS:
        raise RuntimeError(f"only {len(done)} of {LOAD_ORDERS} orders completed within 120 s")
    accepts = sorted(accepted_at[o][1] for o in done)
    completions = sorted(completed_at[o] for o in done)
    accepted_per_s = (len(done) - 1) / (accepts[-1] - accepts[0])
    completed_per_s = (len(done) - 1) / (completions[-1] - completions[0])
    latencies = [(completed_at[o] - accepted_at[o][0]) * 1000 for o in done]
    return {
        "orders": LOAD_ORDERS,
        "concurrency": LOAD_CONCURRENCY,
        "accepted_per_s": round(accepted_per_s, 1),
        "completed_per_s": round(completed_per_s, 1),
        "keeping_up_ratio": round(completed_per_s / accepted_per_s, 3),
        "target_keeping_up_ratio": 0.90,
        "post_to_completed_ms": {
            "p50": round(pct(latencies, 50), 1),
            "p95": round(pct(latencies, 95), 1),
            "p99": round(pct(latencies, 99), 1),
        },
        "refused_503_then_retried": refused,
        "post_accept_ms_p50": round(statistics.median((a - s) * 1000 for s, a in accepted_at.values()), 1),
        "cpu_ms_per_completed_order": {
            name: round((cpu_after[name] - cpu_before.get(name, 0.0)) * 1000 / len(done), 2)
            for name in cpu_after
        },
    }


async def bench_sqlite_intake(amqp_url: str, work: Path) -> dict[str, Any]:
    """`make run`'s embedded default: the portal on SQLite against the bare insert on SQLite,
    in `work` (an empty directory)."""
    portal_db = work / "portal-api.db"
    stack = Stack(
        StackConfig(
            amqp_url=amqp_url,
            database_urls={
                **{n: f"sqlite+aiosqlite:///{work / (n + '.db')}" for n in SERVICES},
                "portal-api": f"sqlite+aiosqlite:///{portal_db}",
            },
            ports={n: free_port() for n in ("portal-api", "carrier-simulator", *SERVICES)},
            extra_env={"portal-api": {"PORTAL_MODE": "local", "LOG_LEVEL": "WARNING"}},
            identity_simulator=False,  # the bench signs in with dev-login
        )
    )
    await stack.prepare("portal-api")
    await stack.start("portal-api")
    try:
        limits = httpx.Limits(max_connections=LOAD_CONCURRENCY * 2)
        async with (
            httpx.AsyncClient(base_url=stack.url("portal-api"), timeout=30, limits=limits) as client,
            bare_insert_app(f"sqlite:///{work / 'bare.db'}") as bare_url,
        ):
            csrf = await sign_in(client)
            return await bench_intake(
                client, csrf, bare_url, bare="one INSERT and commit on one SQLite connection (InlineSqlite)"
            )
    finally:
        await stack.stop()


async def bench_system(amqp_url: str, databases: dict[str, str]) -> dict[str, Any]:
    names = ("portal-api", "carrier-simulator", *[n for n in SERVICES if n != "portal-api"])
    stack = Stack(
        StackConfig(
            amqp_url=amqp_url,
            database_urls=databases,
            ports={n: free_port() for n in names},
            extra_env={
                "portal-api": {"PORTAL_MODE": "local", "LOG_LEVEL": "WARNING", **INTAKE_GATE},
                "order-worker": {"LOG_LEVEL": "WARNING"},
                "carrier-simulator": {"CARRIER_SIM_LOG_LEVEL": "WARNING"},
            },
            identity_simulator=False,  # the bench signs in with dev-login
        )
    )
    await stack.seed_portal()
    await stack.start()
    try:
        await asyncio.sleep(2)
        idle = {n: round(rss_mb(p.pid), 1) for n, p in stack.processes.items()}
        limits = httpx.Limits(max_connections=LOAD_CONCURRENCY * 2)
        async with httpx.AsyncClient(base_url=stack.url("portal-api"), timeout=30, limits=limits) as client:
            csrf = await sign_in(client)
            for _ in range(10):  # warm up connections and caches
                await place_and_wait(client, csrf, poll_s=0.005)
            # Latency at light load: one order at a time.
            light = [await place_and_wait(client, csrf, poll_s=0.002) for _ in range(LATENCY_ORDERS)]
            latencies = [done * 1000 for _, done in light]
            # Sustained load at a fixed concurrency, with an instant carrier and then a slow one.
            peak: dict[str, float] = {}
            sustained = await sustained_load(stack, client, csrf, amqp_url, peak=peak)
            await set_carrier_latency(stack, SLOW_CARRIER_MS)
            slow = await sustained_load(stack, client, csrf, amqp_url, peak=peak)
            await set_carrier_latency(stack, 0)
            # Intake alone: the portal accepting orders, nothing downstream taking CPU from it.
            await stack.stop("order-worker")
            async with bare_insert_app(databases[BARE_INSERT]) as bare_url:
                intake = await bench_intake(client, csrf, bare_url, bare="one asyncpg INSERT (a pool of 20)")
        return {
            "light_load": {
                "orders": LATENCY_ORDERS,
                "post_to_completed_ms": {
                    "p50": round(pct(latencies, 50), 1),
                    "p95": round(pct(latencies, 95), 1),
                    "p99": round(pct(latencies, 99), 1),
                },
                "target_p95_ms": 250,
            },
            "sustained_load": sustained,
            "sustained_load_slow_carrier": {**slow, "carrier_latency_ms": SLOW_CARRIER_MS},
            "intake": intake,
            "memory_mb": {
                "idle": idle,
                "peak_under_load": {n: round(v, 1) for n, v in peak.items()},
                "target_idle": 150,
                "target_load": 300,
            },
        }
    finally:
        await stack.stop()


def print_sustained(title: str, load: dict[str, Any]) -> None:
    print(
        f"{title}: {load['accepted_per_s']} orders/s accepted, {load['completed_per_s']} orders/s "
        f"completed (keep-up {load['keeping_up_ratio']:.2f}, target ≥ 0.90); POST→completed "
        f"p50 {load['post_to_completed_ms']['p50']} ms p95 {load['post_to_completed_ms']['p95']} ms"
    )
    print(
        f"    POST accepted p50 {load['post_accept_ms_p50']} ms (the intake gate holds orders while the "
        f"pipeline is behind); {load['refused_503_then_retried']} refused with 503 and sent again"
    )
    cpu = load["cpu_ms_per_completed_order"]
    print("    CPU ms per completed order: " + ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items()))


def print_intake(title: str, intake: dict[str, Any]) -> None:
    print(
        f"{title}: {intake['accepted_per_s']} orders/s vs bare insert {intake['bare_insert_per_s']}/s, "
        f"ratio {intake['ratio']:.2f} (target ≥ 0.40)   [concurrency {intake['concurrency']}, "
        f"{intake['rounds']}×{intake['seconds_per_round']:g} s each, interleaved]"
    )


async def main() -> dict[str, Any]:
    print(f"mPort bench on {os.cpu_count()} cores — PostgreSQL, RabbitMQ (quorum queues)")
    async with scratch() as (amqp_url, databases):
        relay = await bench_relay(amqp_url, databases["sms-worker"])
        print(
            f"\nOutbox relay        {relay['relay_per_s']:>9.1f} msg/s   plain aio-pika (pipelined confirms) "
            f"{relay['plain_aio_pika_per_s']:.1f} msg/s   ratio {relay['ratio']:.2f} (target ≥ 0.30)"
        )
        system = await bench_system(amqp_url, databases)
        light = system["light_load"]
        print(
            f"Latency, light load POST→completed  p50 {light['post_to_completed_ms']['p50']} ms  "
            f"p95 {light['post_to_completed_ms']['p95']} ms  p99 {light['post_to_completed_ms']['p99']} ms "
            f"(target p95 ≤ 250 ms, carrier latency 0)"
        )
        print_sustained(
            f"Sustained load, carrier latency 0, concurrency {LOAD_CONCURRENCY}", system["sustained_load"]
        )
        print_sustained(
            f"Sustained load, carrier latency {SLOW_CARRIER_MS} ms", system["sustained_load_slow_carrier"]
        )
        print_intake("Intake, PostgreSQL (order-worker stopped)", system["intake"])
        with tempfile.TemporaryDirectory(prefix="mport-bench-") as work:
            sqlite_intake = await bench_sqlite_intake(amqp_url, Path(work))
        print_intake("Intake, SQLite (make run's default)", sqlite_intake)
    print("Memory (RSS MB)     idle:", system["memory_mb"]["idle"])
    print("                    peak:", system["memory_mb"]["peak_under_load"])
    return {"relay": relay, **system, "intake_sqlite": sqlite_intake}


if __name__ == "__main__":
    figures = asyncio.run(main())
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    path = out / f"bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(figures, indent=2))
    print(f"\nwritten to {path}")
