"""Against the real Kannel: Debian's bearerbox and smsbox with the fake SMSC from kannel-extras,
on loopback ports of their own. The sms-worker (a real process, on real RabbitMQ and PostgreSQL)
sends through its Kannel adapter; the SMS reaches the fake SMSC, and Kannel's delivery reports
come back to the worker's endpoint and become events. Kannel's fake SMSC only ever reports
success, so the failure paths are tested against the simulator (test_worker.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from mport_shared.devstack import free_port
from mport_shared.events import VerificationCodeSent, VerificationDelivered
from mport_shared.testing import MakeStack, wait_for

from .conftest import CODE, Results, publish, requested

pytestmark = pytest.mark.integration

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
MISSING = [str(p) for p in (BEARERBOX, SMSBOX, FAKESMSC) if not p.exists()]

USERNAME, PASSWORD, ADMIN_PASSWORD = "mport", "kannel-test-pw", "kannel-admin-pw"


@dataclass(frozen=True)
class Kannel:
    sendsms_url: str
    smsc_log: Path
    directory: Path

    def smsc_output(self) -> str:
        return self.smsc_log.read_text(encoding="utf-8", errors="replace")


def kannel_conf(directory: Path, *, admin: int, smsbox: int, smsc: int, sendsms: int) -> str:
    # Logs at level 2 (warning) and no access-log: at 1 (info) smsbox writes each SMS's text (the
    # code) and at 0 (debug) each request, password included. A real Kannel needs the same.
    return f"""
group = core
admin-port = {admin}
admin-password = {ADMIN_PASSWORD}
admin-interface = 127.0.0.1
smsbox-port = {smsbox}
box-allow-ip = 127.0.0.1
log-file = "{directory / "bearerbox.log"}"
log-level = 2

group = smsc
smsc = fake
smsc-id = fake
host = 127.0.0.1
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{directory / "smsbox.log"}"
log-level = 2

group = sendsms-user
username = {USERNAME}
password = {PASSWORD}
"""


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


@pytest.fixture
async def kannel(tmp_path: Path) -> AsyncIterator[Kannel]:
    if MISSING:
        pytest.skip(f"Kannel not installed: no {', '.join(MISSING)} (apt-get install kannel kannel-extras)")
    admin, smsbox, smsc, sendsms = (free_port() for _ in range(4))
    conf = tmp_path / "kannel.conf"
    conf.write_text(kannel_conf(tmp_path, admin=admin, smsbox=smsbox, smsc=smsc, sendsms=sendsms))
    smsc_log = tmp_path / "fakesmsc.out"
    processes: list[asyncio.subprocess.Process] = []

    async def start(*command: str, output: Path) -> None:
        with output.open("wb") as sink:
            processes.append(
                await asyncio.create_subprocess_exec(
                    *command, stdout=sink, stderr=asyncio.subprocess.STDOUT, start_new_session=True
                )
            )

    try:
        # --verbosity 2 for the console too: at its default (debug) it prints the configuration,
        # password included, and each SMS's text.
        await start(str(BEARERBOX), "--verbosity", "2", str(conf), output=tmp_path / "bearerbox.out")
        await wait_for(lambda: _listening(smsbox), what="bearerbox")
        await start(str(SMSBOX), "--verbosity", "2", str(conf), output=tmp_path / "smsbox.out")
        await wait_for(lambda: _listening(sendsms), what="smsbox's sendsms port")
        # The fake SMSC: sends one mobile-originated message (it stops at once with none), then
        # takes what Kannel sends it and acknowledges each, which Kannel reports as delivered.
        await start(str(FAKESMSC), "-H", "127.0.0.1", "-r", str(smsc), "-i", "3600", "-m", "1",
                    "4790000000 4799999999 text hello", output=smsc_log)  # fmt: skip

        async def smsc_online() -> bool:
            async with httpx.AsyncClient() as client:
                status = await client.get(
                    f"http://127.0.0.1:{admin}/status.txt", params={"password": ADMIN_PASSWORD}
                )
            return "online" in status.text.split("SMSC connections:")[-1]

        await wait_for(smsc_online, what="Kannel's fake SMSC to be online")
        yield Kannel(
            sendsms_url=f"http://127.0.0.1:{sendsms}/cgi-bin/sendsms", smsc_log=smsc_log, directory=tmp_path
        )
    finally:
        for process in reversed(processes):
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()


async def test_a_code_goes_through_kannel_and_its_delivery_report_comes_back(
    kannel: Kannel, make_stack: MakeStack, broker: AbstractRobustConnection, results: Results
) -> None:
    stack = await make_stack(
        "sms-worker",
        extra_env={
            "sms-worker": {
                "SMS_GATEWAY_URL": kannel.sendsms_url,
                "SMS_GATEWAY_USERNAME": USERNAME,
                "SMS_GATEWAY_PASSWORD": PASSWORD,
                "LOG_LEVEL": "DEBUG",
            }
        },
    )
    payload = requested(msisdn="4748123456")
    await publish(broker, payload)
    sent = await results.wait(payload.verification_id, VerificationCodeSent.event_type, timeout_s=30)
    assert sent["gateway_message_id"] == str(payload.verification_id)
    # Kannel reports 8 (at the SMSC) and then 1 (delivered): the worker publishes the outcome.
    await results.wait(payload.verification_id, VerificationDelivered.event_type, timeout_s=30)

    async def at_the_smsc() -> bool:
        return "Got message" in kannel.smsc_output() and "4748123456" in kannel.smsc_output()

    await wait_for(at_the_smsc, what="the SMS at the fake SMSC")
    received = [line for line in kannel.smsc_output().splitlines() if "4748123456" in line]
    assert any("mPort" in line and CODE in line for line in received), received
    await stack.stop("sms-worker")
    assert stack.config.log_dir is not None
    logs = (stack.config.log_dir / "sms-worker.log").read_text(encoding="utf-8")
    assert "delivery report" in logs
    assert CODE not in logs
    assert PASSWORD not in logs
    kannel_logs = "".join(p.read_text(errors="replace") for p in kannel.directory.glob("*box.*"))
    assert CODE not in kannel_logs
    assert PASSWORD not in kannel_logs
    assert uuid.UUID(sent["verification_id"]) == payload.verification_id
