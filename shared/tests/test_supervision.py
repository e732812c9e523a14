"""`make run` supervises its processes: a service that dies is started again with a growing delay
while the others keep running, and Ctrl-C still stops everything and leaves nothing behind."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mport_shared.devstack import SIMULATORS, RestartPolicy, Stack, StackConfig, describe_exit, free_port
from mport_shared.testing import MakeDatabase, sign_in_with_work_account, wait_for

SERVICES = (
    "portal-api",
    "carrier-simulator",
    "identity-simulator",
    "order-worker",
    "sms-worker",
    "payroll-worker",
)
MODULES = {name: name.replace("-", "_") for name in SERVICES}


def test_the_restart_delay_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy()
    assert [policy.delay_s(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.delay_s(10_000) == 30  # a service crash-looping for days
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"
    assert describe_exit(3) == "exit code 3"


async def _ready(port: int, name: str) -> bool:
    path = "/healthz" if name in SIMULATORS else "/readyz"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"http://127.0.0.1:{port}{path}")).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Supervised:
    stack: Stack
    echo: io.StringIO  # what `make run` would print: the services' lines and the supervisor's


@pytest.fixture
async def supervised(amqp_url: str, make_database: MakeDatabase, tmp_path: Path) -> AsyncIterator[Supervised]:
    """The carrier simulator and the order-worker, supervised, on this test's vhost and database."""
    # Not started here, but the config names a database for every service.
    unused = {n: f"sqlite+aiosqlite:///{tmp_path / n}.db" for n in SERVICES if n != "order-worker"}
    config = StackConfig(
        amqp_url=amqp_url,
        database_urls={"order-worker": await make_database("order_worker:migrations"), **unused},
        ports={name: free_port() for name in SERVICES},
        log_dir=tmp_path / "log",
    )
    echo = io.StringIO()
    stack = Stack(config, echo=echo, restart=RestartPolicy())
    try:
        await stack.start("carrier-simulator", "order-worker")
        yield Supervised(stack, echo)
    finally:
        await stack.stop()


@pytest.mark.integration
async def test_a_killed_service_comes_back_and_the_others_keep_running(supervised: Supervised) -> None:
    stack = supervised.stack
    before = {name: process.pid for name, process in stack.processes.items()}
    stack.kill("order-worker")

    async def back() -> bool:
        process = stack.processes["order-worker"]
        return process.pid != before["order-worker"] and await _ready(
            stack.specs["order-worker"].port, "order-worker"
        )

    await wait_for(back, timeout_s=30, interval_s=0.2, what="the order-worker to be restarted and ready")
    assert stack.processes["carrier-simulator"].pid == before["carrier-simulator"]
    assert stack.processes["carrier-simulator"].returncode is None
    assert (
        f"order-worker (pid {before['order-worker']}) exited with signal SIGKILL; restarting it in 1 s"
        in supervised.echo.getvalue()
    )

    # Stopping while a restart is pending cancels it: nothing comes back after stop().
    stack.kill("carrier-simulator")
    await asyncio.sleep(0.2)
    await stack.stop()
    await asyncio.sleep(1.5)
    assert stack.processes == {}
    assert not await _ready(stack.specs["carrier-simulator"].port, "carrier-simulator")


def _children(parent: int) -> dict[str, int]:
    """The services `parent` runs, by name, read from /proc (Linux)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        # The fields after the command name, which is in parentheses and may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) != parent or fields[0] == "Z":
            continue
        for name, module in MODULES.items():
            # `python -m order_worker`, not `python -m order_worker migrate`
            if argv[-3:] == [b"-m", module.encode(), b""]:
                found[name] = int(entry.name)
    return found


def _environ(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.integration
@pytest.mark.timeout(240)
async def test_make_run_restarts_a_killed_service_and_ctrl_c_stops_everything(
    amqp_url: str, tmp_path: Path
) -> None:
    ports = {name: free_port() for name in SERVICES}
    var = tmp_path / "var"
    env = {
        # No provider of the developer's own: make run starts the identity simulator.
        **{k: v for k, v in os.environ.items() if not k.startswith("OIDC_") and k != "PUBLIC_URL"},
        "AMQP_URL": amqp_url,
        "MPORT_VAR_DIR": str(var),
        **{f"{name.upper().replace('-', '_')}_PORT": str(port) for name, port in ports.items()},
    }
    output = tmp_path / "devstack.out"
    with output.open("wb") as out:
        devstack = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mport_shared.devstack", env=env, stdout=out, stderr=out
        )
    seen: set[int] = set()
    browser = httpx.AsyncClient(timeout=10)
    try:

        async def all_ready() -> bool:
            if devstack.returncode is not None:
                raise AssertionError(f"devstack exited early:\n{output.read_text()}")
            return all([await _ready(port, name) for name, port in ports.items()])

        # Four migrations and a seed, then five services, on a busy two-core machine.
        await wait_for(all_ready, timeout_s=150, interval_s=0.5, what="every service of make run")
        before = _children(devstack.pid)
        assert set(before) == set(SERVICES), before
        seen.update(before.values())
        state_file = var / "carrier-simulator.json"
        assert f"CARRIER_SIM_STATE_FILE={state_file}" in _environ(before["carrier-simulator"])
        # Bruk jobbkonto works out of the box: the portal signs Kari in through the simulator.
        portal = f"http://127.0.0.1:{ports['portal-api']}"
        assert f"OIDC_ISSUER=http://127.0.0.1:{ports['identity-simulator']}" in _environ(before["portal-api"])
        landed = await sign_in_with_work_account(browser, portal, "kari.nordmann@demo.no")
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == "/abonnement"
        assert (await browser.get(f"{portal}/api/v1/me")).json()["name"] == "Kari Nordmann"

        os.kill(before["order-worker"], signal.SIGKILL)

        async def restarted() -> bool:
            pid = _children(devstack.pid).get("order-worker")
            if pid is not None:
                seen.add(pid)
            return pid not in (None, before["order-worker"]) and await _ready(
                ports["order-worker"], "order-worker"
            )

        await wait_for(restarted, timeout_s=40, interval_s=0.2, what="the order-worker to be restarted")
        after = _children(devstack.pid)
        seen.update(after.values())
        assert {n: p for n, p in after.items() if n != "order-worker"} == {
            n: p for n, p in before.items() if n != "order-worker"
        }
        text = output.read_text()
        assert f"order-worker (pid {before['order-worker']}) exited with signal SIGKILL" in text

        # A restarted portal knows its predecessor's cookies: Kari is still signed in.
        os.kill(before["portal-api"], signal.SIGKILL)

        async def portal_back() -> bool:
            pid = _children(devstack.pid).get("portal-api")
            if pid is not None:
                seen.add(pid)
            return pid not in (None, before["portal-api"]) and await _ready(ports["portal-api"], "portal-api")

        await wait_for(portal_back, timeout_s=60, interval_s=0.2, what="the portal to be restarted")
        me = await browser.get(f"{portal}/api/v1/me")
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "Kari Nordmann"

        devstack.send_signal(signal.SIGINT)
        returncode = await asyncio.wait_for(devstack.wait(), 60)
        text = output.read_text()
        assert returncode == 0, text
        assert "Stopped." in text
        assert [pid for pid in seen if _alive(pid)] == []
    finally:
        await browser.aclose()
        if devstack.returncode is None:
            devstack.kill()
            await devstack.wait()
        for pid in seen:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
