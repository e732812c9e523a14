"""Runs the whole system as local processes: `make run` uses it, and so do the end-to-end tests.

Each service is a real process with its own database, talking to a real RabbitMQ; the carrier
simulator, the SMS gateway simulator (Kannel's sendsms; a developer reads the codes it "sent" at
`/messages`) and the identity simulator (the OpenID Connect provider behind "Bruk jobbkonto",
unless the stack is told to use another provider) are real HTTP servers. Output lines are prefixed with
the service name. With a `RestartPolicy` the stack supervises its processes as an orchestrator
would: one that exits on its own is started again after a growing delay while the rest keep
running."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import httpx

from mport_shared.messaging.connection import BrokerAddressError, broker_addresses

CARRIER_PATH = "/tmf-api/productOrderingManagement/v5"
# Stand-ins for the systems outside mPort; stopped after the services that call them.
SIMULATORS = frozenset({"carrier-simulator", "sms-simulator", "identity-simulator"})
# The portal's client at the identity simulator: well-known local development values.
IDENTITY_CLIENT_ID = "mport-portal"
IDENTITY_CLIENT_SECRET = "local-dev-secret"  # noqa: S105
# The sms-worker's sendsms-user at the SMS gateway simulator: local development values too.
SMS_GATEWAY_USERNAME = "mport"
SMS_GATEWAY_PASSWORD = "mport-local"  # noqa: S105
SENDSMS_PATH = "/cgi-bin/sendsms"
DEFAULT_PORTS: Mapping[str, int] = {
    "portal-api": 8000,
    "carrier-simulator": 8081,
    "sms-simulator": 8082,
    "identity-simulator": 8083,
    "order-worker": 8091,
    "sms-worker": 8092,
    "payroll-worker": 8093,
}


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    module: str
    port: int
    env: Mapping[str, str]
    migrate: bool = True


@dataclass
class StackConfig:
    amqp_url: str
    database_urls: Mapping[str, str]  # per service name
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    extra_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    log_json: bool = True
    log_dir: Path | None = None
    # True: the identity simulator runs and the portal signs in with it ("Bruk jobbkonto" works out
    # of the box). False: no simulator; the portal takes OIDC_* from the environment (or extra_env).
    identity_simulator: bool = True
    # Where browsers reach the portal (its OpenID Connect redirect URI is built on it); None: the
    # portal's port on 127.0.0.1.
    portal_public_url: str | None = None
    # The token the SMS gateway's delivery reports to the sms-worker carry: one per run, so a
    # restarted sms-worker still accepts the reports of the SMS its predecessor sent.
    sms_dlr_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # The bearer token of the payroll-worker's internal API, which the portal's admin pages call:
    # one per run, given to both.
    payroll_api_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # The bearer token of every service's /ops endpoints (mport-ops outbox, stuck): one per run.
    ops_api_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self) -> None:
        # A process left out of `ports` (a caller that names only what it starts) gets a free
        # port, so that what points at it (the sms-worker at the SMS simulator) never points at
        # a default port another run may hold.
        self.ports = {**{n: free_port() for n in DEFAULT_PORTS if n not in self.ports}, **self.ports}

    @property
    def public_url(self) -> str:
        return (self.portal_public_url or f"http://127.0.0.1:{self.ports['portal-api']}").rstrip("/")

    def identity_issuer(self) -> str:
        return f"http://127.0.0.1:{self.ports['identity-simulator']}"

    def identity_client(self) -> dict[str, object]:
        """The portal as the identity simulator registers it: its callback and sign-in page, at its
        public URL and (for a developer typing either) at 127.0.0.1 and localhost."""
        port = self.ports["portal-api"]
        bases = dict.fromkeys((self.public_url, f"http://127.0.0.1:{port}", f"http://localhost:{port}"))
        return {
            "client_id": IDENTITY_CLIENT_ID,
            "client_secret": IDENTITY_CLIENT_SECRET,
            "name": "mPort",
            "redirect_uris": [f"{base}/auth/oidc/callback" for base in bases],
            "post_logout_redirect_uris": [f"{base}/logg-inn" for base in bases],
        }

    def specs(self) -> list[ProcessSpec]:
        p = self.ports
        carrier_url = f"http://127.0.0.1:{p['carrier-simulator']}{CARRIER_PATH}"
        common = {
            "AMQP_URL": self.amqp_url,
            "LOG_JSON": "true" if self.log_json else "false",
            "OPS_API_TOKEN": self.ops_api_token,
        }

        def env(name: str, **values: str) -> dict[str, str]:
            return {**common, "HTTP_PORT": str(p[name]), **values, **self.extra_env.get(name, {})}

        portal_oidc: dict[str, str] = {}
        simulators = [
            ProcessSpec(
                "carrier-simulator",
                "carrier_simulator",
                p["carrier-simulator"],
                {
                    "CARRIER_SIM_PORT": str(p["carrier-simulator"]),
                    **self.extra_env.get("carrier-simulator", {}),
                },
                migrate=False,
            ),
            ProcessSpec(
                "sms-simulator",
                "sms_simulator",
                p["sms-simulator"],
                {
                    "SMS_SIM_PORT": str(p["sms-simulator"]),
                    "SMS_SIM_USERNAME": SMS_GATEWAY_USERNAME,
                    "SMS_SIM_PASSWORD": SMS_GATEWAY_PASSWORD,
                    "SMS_SIM_LOG_JSON": common["LOG_JSON"],
                    **self.extra_env.get("sms-simulator", {}),
                },
                migrate=False,
            ),
        ]
        if self.identity_simulator:
            issuer = self.identity_issuer()
            portal_oidc = {
                "OIDC_ISSUER": issuer,
                "OIDC_CLIENT_ID": IDENTITY_CLIENT_ID,
                "OIDC_CLIENT_SECRET": IDENTITY_CLIENT_SECRET,
            }
            simulators.append(
                ProcessSpec(
                    "identity-simulator",
                    "identity_simulator",
                    p["identity-simulator"],
                    {
                        "IDENTITY_SIM_PORT": str(p["identity-simulator"]),
                        "IDENTITY_SIM_ISSUER": issuer,
                        "IDENTITY_SIM_CLIENTS": json.dumps([self.identity_client()]),
                        "IDENTITY_SIM_LOG_JSON": common["LOG_JSON"],
                        **self.extra_env.get("identity-simulator", {}),
                    },
                    migrate=False,
                )
            )
        return [
            *simulators,
            ProcessSpec(
                "order-worker",
                "order_worker",
                p["order-worker"],
                env(
                    "order-worker",
                    DATABASE_URL=self.database_urls["order-worker"],
                    CARRIER_BASE_URL=carrier_url,
                ),
            ),
            ProcessSpec("sms-worker", "sms_worker", p["sms-worker"],
                        env("sms-worker", DATABASE_URL=self.database_urls["sms-worker"],
                            SMS_GATEWAY_URL=f"http://127.0.0.1:{p['sms-simulator']}{SENDSMS_PATH}",
                            SMS_GATEWAY_USERNAME=SMS_GATEWAY_USERNAME,
                            SMS_GATEWAY_PASSWORD=SMS_GATEWAY_PASSWORD,
                            SMS_DLR_BASE_URL=f"http://127.0.0.1:{p['sms-worker']}",
                            SMS_DLR_SECRET=self.sms_dlr_secret)),
            ProcessSpec("payroll-worker", "payroll_worker", p["payroll-worker"],
                        env("payroll-worker", DATABASE_URL=self.database_urls["payroll-worker"],
                            PAYROLL_API_TOKEN=self.payroll_api_token)),
            ProcessSpec("portal-api", "portal_api", p["portal-api"],
                        env("portal-api", DATABASE_URL=self.database_urls["portal-api"],
                            PUBLIC_URL=self.public_url,
                            SMS_SIMULATOR_URL=f"http://127.0.0.1:{p['sms-simulator']}",
                            PAYROLL_WORKER_URL=f"http://127.0.0.1:{p['payroll-worker']}",
                            PAYROLL_API_TOKEN=self.payroll_api_token, **portal_oidc)),
        ]  # fmt: skip


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    # Start from our environment, minus anything a parent shell set for one service only.
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "HTTP_PORT"}}
    return {**base, "PYTHONUNBUFFERED": "1", **extra}


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff for restarting a process that exited on its own: 1 s, 2 s, 4 s … up to
    `max_delay_s`; a process that stayed up `reset_after_s` starts over at `first_delay_s`."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    reset_after_s: float = 60.0

    def delay_s(self, restarts_in_a_row: int) -> float:
        """How long to wait before the next restart, after `restarts_in_a_row` quick deaths."""
        # The exponent is capped so a service crash-looping for days cannot overflow the float.
        return min(self.first_delay_s * 2.0 ** min(restarts_in_a_row, 32), self.max_delay_s)


def describe_exit(returncode: int) -> str:
    """`exit code 1` or `signal SIGKILL` (asyncio reports death by signal N as -N)."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


class Stack:
    """Start, stop, kill and restart the system's processes.

    With `restart` set, a process that exits without `stop()` asking it to (a crash, an OOM kill,
    `kill()`) is started again under that policy; `stop()` never races a restart. Without it,
    nothing is restarted behind a test's back."""

    def __init__(
        self, config: StackConfig, *, echo: IO[str] | None = None, restart: RestartPolicy | None = None
    ) -> None:
        self.config = config
        self.specs = {s.name: s for s in config.specs()}
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self._pumps: list[asyncio.Task[None]] = []
        self._echo = echo
        self._restart = restart
        self._supervisors: dict[str, asyncio.Task[None]] = {}
        self._started_at: dict[str, float] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.specs[name].port}"

    def write_ops_file(self, path: Path) -> None:
        """Where `mport-ops` finds this run's services and their /ops token (MPORT_VAR_DIR/ops.json),
        readable by its owner only."""
        services = {n: self.url(n) for n, spec in self.specs.items() if n not in SIMULATORS}
        document = {"services": services, "token": self.config.ops_api_token}
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=2)
        path.chmod(0o600)

    def add_replica(self, name: str) -> str:
        """One more process of service `name`, as a scaled-out Deployment has: the same settings and
        database, an HTTP port of its own. Returns its name (`order-worker-2`, …) for start(),
        stop(), kill() and url()."""
        spec = self.specs[name]
        if name in SIMULATORS:
            raise ValueError(f"{name} is a simulator; only services run as replicas")
        number = 2
        while f"{name}-{number}" in self.specs:
            number += 1
        replica, port = f"{name}-{number}", free_port()
        env = {**spec.env, "HTTP_PORT": str(port)}
        self.specs[replica] = dataclasses.replace(spec, name=replica, port=port, env=env, migrate=False)
        return replica

    async def prepare(self, *names: str, seed_demo: bool = True) -> None:
        """Migrate the services' databases (all when none are named) and seed the portal's."""
        for name in names or tuple(self.specs):
            spec = self.specs[name]
            if spec.migrate:
                await self._run_once(spec, "migrate")
            if name == "portal-api":
                await self._run_once(spec, "seed", *(["--demo"] if seed_demo else []))

    async def seed_portal(self) -> None:
        await self._run_once(self.specs["portal-api"], "seed", "--demo")

    async def _run_once(self, spec: ProcessSpec, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", spec.module, *args,
            env=_child_env(spec.env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            out, _ = await process.communicate()
        except asyncio.CancelledError:
            # Ctrl-C while migrating: do not leave the migration running behind us.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"{spec.name} {' '.join(args)} failed:\n{out.decode(errors='replace')}")

    async def start(self, *names: str, timeout_s: float = 60.0) -> None:
        """Start the named processes (all when none are named) and wait until each is ready."""
        for name in names or tuple(self.specs):
            await self._spawn(name)
            if self._restart is not None:
                if (old := self._supervisors.pop(name, None)) is not None:
                    old.cancel()
                self._supervisors[name] = asyncio.create_task(
                    self._supervise(name, self._restart), name=f"supervise-{name}"
                )
        for name in names or tuple(self.specs):
            await self.wait_ready(name, timeout_s=timeout_s)

    async def _spawn(self, name: str) -> None:
        spec = self.specs[name]
        # Cancelled while spawning, asyncio kills the new child, so none is left unrecorded.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", spec.module,
            env=_child_env(spec.env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.processes[name] = process
        self._started_at[name] = time.monotonic()
        self._pumps = [pump for pump in self._pumps if not pump.done()]
        self._pumps.append(asyncio.create_task(self._pump(name, process)))

    async def _supervise(self, name: str, policy: RestartPolicy) -> None:
        """Restart `name` whenever it exits; `stop()` cancels this before it stops the process."""
        restarts_in_a_row = 0
        while True:
            process = self.processes[name]
            returncode = await process.wait()
            if time.monotonic() - self._started_at[name] >= policy.reset_after_s:
                restarts_in_a_row = 0
            delay = policy.delay_s(restarts_in_a_row)
            restarts_in_a_row += 1
            at = (datetime.now() + timedelta(seconds=delay)).strftime("%H:%M:%S")
            self._say(
                f"{name} (pid {process.pid}) exited with {describe_exit(returncode)}; "
                f"restarting it in {delay:g} s (at {at}, restart {restarts_in_a_row} in a row)"
            )
            await asyncio.sleep(delay)
            await self._spawn(name)
            try:
                await self.wait_ready(name, timeout_s=60.0)
            except (RuntimeError, TimeoutError) as exc:
                self._say(f"{name} did not come back ready: {exc}")  # an exit is handled next turn
            else:
                self._say(f"{name} is running again (pid {self.processes[name].pid})")

    def _say(self, message: str) -> None:
        if self._echo is not None:
            print(f"{'devstack':>17} | {message}", file=self._echo, flush=True)

    async def wait_ready(self, name: str, *, timeout_s: float) -> None:
        spec = self.specs[name]
        path = "/healthz" if name in SIMULATORS else "/readyz"
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                process = self.processes.get(name)
                if process is not None and process.returncode is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode} while starting")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{spec.port}{path}")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} was not ready within {timeout_s:.0f}s")
                await asyncio.sleep(0.1)

    async def _pump(self, name: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        log_file = None
        if self.config.log_dir is not None:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            log_file = (self.config.log_dir / f"{name}.log").open("a", encoding="utf-8")
        try:
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                if log_file is not None:
                    log_file.write(line + "\n")
                    log_file.flush()
                if self._echo is not None:
                    print(f"{name:>17} | {line}", file=self._echo, flush=True)
        finally:
            if log_file is not None:
                log_file.close()

    def kill(self, name: str) -> None:
        """SIGKILL: the process dies mid-whatever, as in a crash."""
        process = self.processes[name]
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)

    async def stop(self, *names: str, timeout_s: float = 25.0) -> None:
        """SIGTERM (graceful: stop taking work, finish what is in hand), then SIGKILL for any still
        running `timeout_s` later. Supervision of these processes ends first: nothing restarts."""
        supervisors = [self._supervisors.pop(n) for n in (names or tuple(self._supervisors))
                       if n in self._supervisors]  # fmt: skip
        for supervisor in supervisors:
            supervisor.cancel()
        await asyncio.gather(*supervisors, return_exceptions=True)
        targets = [n for n in (names or tuple(self.processes)) if n in self.processes]
        deadline = time.monotonic() + timeout_s
        # The services first, then the simulators they talk to: a stopping order-worker still
        # reaches the carrier, to remove its listener there.
        for wave in (
            [n for n in targets if n not in SIMULATORS],
            [n for n in targets if n in SIMULATORS],
        ):
            for name in wave:
                process = self.processes[name]
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGTERM)
            for name in wave:
                process = self.processes.pop(name)
                try:
                    await asyncio.wait_for(process.wait(), max(deadline - time.monotonic(), 0.0))
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()
        if not self.processes:
            for pump in self._pumps:
                pump.cancel()
            self._pumps.clear()


# Ports handed out by free_port in this process: each goes to one process only.
_HANDED_OUT: set[int] = set()
_LOWEST_PORT = 10_000
# The Fetch standard's "bad ports" (https://fetch.spec.whatwg.org/#bad-port): browsers refuse
# to open them (Chromium: ERR_UNSAFE_PORT), so a service on one cannot be tried in a browser.
# A CI run's browser tests failed so on 10080; the ones below 10,000 are listed for completeness.
BROWSER_BAD_PORTS = frozenset(
    {1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101}
    | {102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389}
    | {427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636}
    | {989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566}
    | {6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080}
)


def free_port() -> int:
    """A port nothing listens on now, for a process about to start.

    Picked below the kernel's range for outgoing connections' own ports: a port from that range
    (what binding port 0 gives) can be taken by any outgoing connection between this check and
    the service's bind, which failed a CI run with "address already in use". Picked at random,
    so that test processes running side by side rarely pick the same one, and never one this
    process handed out before, nor one that browsers refuse to open (BROWSER_BAD_PORTS)."""
    low = _outgoing_ports_start()
    for _ in range(200):
        port = secrets.choice(range(_LOWEST_PORT, low)) if low > _LOWEST_PORT + 1000 else 0
        if port in _HANDED_OUT or port in BROWSER_BAD_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = int(s.getsockname()[1])
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("found no free port")


@functools.cache  # the kernel's setting: read once
def _outgoing_ports_start() -> int:
    """The first port of the kernel's range for outgoing connections (Linux), or 0 if unknown."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


# ---- `make run` -------------------------------------------------------------------------------


def _broker_answers(amqp_url: str) -> bool:
    """True when a node AMQP_URL names (one, or any of a cluster's) accepts a connection."""
    try:
        addresses = broker_addresses(amqp_url)
    except BrokerAddressError as exc:
        raise SystemExit(f"AMQP_URL: {exc}") from None
    for address in addresses:
        try:
            with socket.create_connection((address.host or "127.0.0.1", address.port or 5672), timeout=2):
                return True
        except OSError:
            continue
    return False


def ensure_broker(amqp_url: str) -> None:
    """Make sure RabbitMQ answers: start a local installation if there is one, else explain."""
    if _broker_answers(amqp_url):
        return
    server = shutil.which("rabbitmq-server") or (
        "/usr/sbin/rabbitmq-server" if Path("/usr/sbin/rabbitmq-server").exists() else None
    )
    if server is None:
        raise SystemExit(
            f"No RabbitMQ answers at {amqp_url}.\n"
            "Start one, for example:\n"
            "  docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:3.13-management\n"
            "  (or on Debian/Ubuntu: sudo apt-get install rabbitmq-server)\n"
            "or point AMQP_URL at a broker you have."
        )
    print(f"No broker at {amqp_url}; starting the local rabbitmq-server …", flush=True)
    subprocess.run([server, "-detached"], check=False)  # noqa: S603
    deadline = time.monotonic() + 60
    while not _broker_answers(amqp_url):
        if time.monotonic() > deadline:
            raise SystemExit(
                "rabbitmq-server did not start within 60 s; see its logs under /var/log/rabbitmq"
            )
        time.sleep(1)


def apply_policies(amqp_url: str) -> None:
    """The work queues' delivery-limit policies (as deploy/rabbitmq/definitions.json has them) on
    the run's vhost, through the management API (RABBITMQ_API_URL); a warning when it is not there."""
    from mport_shared.ops.broker import put_delivery_limit_policies, vhost_and_auth

    api_url = os.environ.get("RABBITMQ_API_URL", "http://127.0.0.1:15672/api")
    vhost, auth = vhost_and_auth(amqp_url)
    try:
        put_delivery_limit_policies(api_url, vhost=vhost, auth=auth)
    except httpx.HTTPError as exc:
        print(
            f"Could not set the delivery-limit policies at {api_url} ({type(exc).__name__}); "
            "a message that crashes a worker is dead-lettered after the queues' own limit (20).",
            flush=True,
        )


def _env_name(service: str) -> str:
    return service.upper().replace("-", "_")


def _ports_from_env() -> dict[str, int]:
    """`<SERVICE>_PORT` (e.g. `PORTAL_API_PORT=9000`) moves a service off its default port."""
    ports: dict[str, int] = {}
    for name, default in DEFAULT_PORTS.items():
        variable = f"{_env_name(name)}_PORT"
        value = os.environ.get(variable, "").strip()
        if not value:
            ports[name] = default
        elif value.isdigit() and 0 < int(value) < 65536:
            ports[name] = int(value)
        else:
            raise SystemExit(f"{variable} must be a port number (1-65535), not {value!r}")
    return ports


def external_identity_provider(environ: Mapping[str, str]) -> str | None:
    """The issuer of the company's own provider when `OIDC_ISSUER` is set (then no simulator runs
    and the portal takes OIDC_* from the environment), else None. Stops with a message when the
    client id to go with it is missing."""
    issuer = environ.get("OIDC_ISSUER", "").strip()
    if not issuer:
        return None
    if not environ.get("OIDC_CLIENT_ID", "").strip():
        raise SystemExit(
            f"OIDC_ISSUER is set ({issuer}), so make run uses that identity provider instead of the "
            "simulator: set OIDC_CLIENT_ID (and OIDC_CLIENT_SECRET) too, or unset OIDC_ISSUER."
        )
    return issuer


async def _run_local(amqp_url: str, var: Path) -> None:
    names = ("portal-api", "order-worker", "sms-worker", "payroll-worker")
    listener_secret = os.environ.get("CARRIER_LISTENER_SECRET") or secrets.token_urlsafe(32)
    external_issuer = external_identity_provider(os.environ)
    config = StackConfig(
        amqp_url=amqp_url,
        database_urls={n: os.environ.get(f"{_env_name(n)}_DATABASE_URL",
                                         f"sqlite+aiosqlite:///{var / (n + '.db')}") for n in names},
        ports=_ports_from_env(),
        extra_env={
            # The simulator keeps its orders across a restart, so a restarted worker still finds them.
            "carrier-simulator": {"CARRIER_SIM_STATE_FILE": str(var / "carrier-simulator.json")},
            # One signing key for every run: a restarted simulator's ID tokens verify against the
            # keys the portal already fetched.
            "identity-simulator": {"IDENTITY_SIM_KEY_FILE": str(var / "identity-simulator-key.json")},
            # One listener token for the whole run: an order-worker restarted by the supervisor
            # takes over its predecessor's carrier listener, and the notifications it missed.
            "order-worker": {"CARRIER_LISTENER_SECRET": listener_secret},
            # One session secret and one code secret for the whole run: a portal restarted by the
            # supervisor still knows the cookies and the one-time codes its predecessor gave out
            # (its own default is one per process, so a restart signed everyone out).
            "portal-api": {
                name: os.environ.get(name) or secrets.token_urlsafe(32)
                for name in ("SESSION_SECRET", "VERIFICATION_CODE_SECRET")
            },
        },
        log_json=os.environ.get("LOG_JSON", "false").lower() == "true",
        log_dir=var / "log",
        identity_simulator=external_issuer is None,
        portal_public_url=os.environ.get("PUBLIC_URL", "").strip() or None,
        sms_dlr_secret=os.environ.get("SMS_DLR_SECRET") or secrets.token_urlsafe(32),
        payroll_api_token=os.environ.get("PAYROLL_API_TOKEN") or secrets.token_urlsafe(32),
    )  # fmt: skip
    if external_issuer is None:
        identity = f"  identity provider {config.identity_issuer()}  (the simulator: pick a person there)\n"
    else:
        identity = f"  identity provider {external_issuer}  (from OIDC_ISSUER)\n"
    stack = Stack(config, echo=sys.stdout, restart=RestartPolicy())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def start() -> None:
        print("Migrating and seeding the databases under", var, flush=True)
        await stack.prepare()
        await stack.start()
        stack.write_ops_file(var / "ops.json")
        apply_policies(amqp_url)
        print(
            "\nmPort is running:\n"
            f"  portal            {config.public_url}  (Bruk jobbkonto, e.g. as Kari Nordmann)\n"
            f"{identity}"
            f"  carrier simulator {stack.url('carrier-simulator')}{CARRIER_PATH}\n"
            f"  SMS simulator     {stack.url('sms-simulator')}/messages  (the one-time codes it sent)\n"
            f"  logs              {var / 'log'}\n"
            "A service that stops unexpectedly is restarted. Press Ctrl-C to stop.\n",
            flush=True,
        )

    starting = asyncio.create_task(start())
    stopping = asyncio.create_task(stop.wait())
    try:
        # Ctrl-C is honoured while starting too; afterwards the stack supervises until it comes.
        done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done and not stop.is_set():
            try:
                starting.result()
            except (RuntimeError, TimeoutError) as exc:
                raise SystemExit(f"mPort could not start: {exc}") from None
            await stopping
    finally:
        for task in (starting, stopping):
            task.cancel()
        await asyncio.gather(starting, stopping, return_exceptions=True)
        print("\nStopping …", flush=True)
        await stack.stop()
        (var / "ops.json").unlink(missing_ok=True)
        print("Stopped.", flush=True)


def main() -> None:
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    ensure_broker(amqp_url)
    var = Path(os.environ.get("MPORT_VAR_DIR", "var")).absolute()
    var.mkdir(parents=True, exist_ok=True)
    asyncio.run(_run_local(amqp_url, var))


if __name__ == "__main__":
    main()
