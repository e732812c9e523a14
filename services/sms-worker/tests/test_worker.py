"""sms-worker as a real process, against real RabbitMQ, PostgreSQL and the SMS gateway simulator
(also a real process): duplicates, a kill between send and ack, expiry, a gateway away, one that
refuses, delivery reports, and logs that never hold the code."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from mport_shared.devstack import Stack
from mport_shared.events import VerificationCodeSent, VerificationDelivered, VerificationDeliveryFailed
from mport_shared.testing import MakeStack, latest_sms_code, wait_for

from .conftest import CODE, Results, publish, requested

pytestmark = pytest.mark.integration

# Quick retries and reports, so what takes minutes with a real gateway takes seconds here.
QUICK_WORKER = {"SMS_RETRY_FIRST_S": "0.2", "SMS_RETRY_MAX_S": "0.5", "LOG_LEVEL": "DEBUG"}
QUICK_SIMULATOR = {"SMS_SIM_DLR_DELAY_MS": "100"}


@pytest.fixture
async def stack(make_stack: MakeStack) -> Stack:
    return await make_stack(
        "sms-simulator",
        "sms-worker",
        extra_env={"sms-worker": QUICK_WORKER, "sms-simulator": QUICK_SIMULATOR},
    )


async def messages(stack: Stack, to: str = "4748123456") -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{stack.url('sms-simulator')}/messages", params={"to": to})
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
        return found


async def configure(stack: Stack, **config: Any) -> None:
    async with httpx.AsyncClient() as client:
        (await client.put(f"{stack.url('sms-simulator')}/simulator/config", json=config)).raise_for_status()


async def worker_state(stack: Stack, verification_id: uuid.UUID) -> str | None:
    """The worker's own record, read as an operator would (its table, by its database URL)."""
    import asyncpg

    url = stack.config.database_urls["sms-worker"].replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(url)
    try:
        state: str | None = await connection.fetchval(
            "SELECT state FROM sms_deliveries WHERE verification_id = $1", str(verification_id)
        )
        return state
    finally:
        await connection.close()


def logs_of(stack: Stack) -> str:
    assert stack.config.log_dir is not None
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(stack.config.log_dir.glob("*.log")))


async def test_a_code_is_sent_once_reported_delivered_and_never_logged(
    broker: AbstractRobustConnection, results: Results, stack: Stack
) -> None:
    payload = requested()
    await publish(broker, payload, times=2)  # a duplicate delivery, as a redelivery makes
    sent = await results.wait(payload.verification_id, VerificationCodeSent.event_type)
    delivered = await results.wait(payload.verification_id, VerificationDelivered.event_type)
    assert sent["gateway_message_id"] == str(payload.verification_id)
    assert delivered["delivered_at"] >= sent["sent_at"]
    [message] = await messages(stack)
    assert message["from"] == "mPort"
    assert message["text"].startswith(f"Din engangskode for mPort er {CODE}. Den gjelder til ")
    assert message["status"] == "delivered"
    async with httpx.AsyncClient() as client:
        assert await latest_sms_code(client, stack.url("sms-simulator"), "4748123456") == CODE
        assert await latest_sms_code(client, stack.url("sms-simulator"), "4791234567") is None
    assert message["reports"] == [8, 1]
    async with httpx.AsyncClient() as client:
        exposed = (await client.get(f"{stack.url('sms-worker')}/metrics")).text
    assert 'mport_sms_gateway_call_seconds_count{outcome="sent"} 1.0' in exposed
    assert 'mport_sms_delivery_reports_total{outcome="published"} 1.0' in exposed
    assert CODE not in exposed
    assert "4748123456" not in exposed
    await stack.stop("sms-worker")  # its last lines flushed
    await results.collect()
    assert len(results.of(payload.verification_id, VerificationCodeSent.event_type)) == 1
    assert len(results.of(payload.verification_id, VerificationDelivered.event_type)) == 1
    logs = logs_of(stack)
    assert "SMS handed to the gateway" in logs  # the logs are there, and at DEBUG
    assert CODE not in logs
    assert "mport-local" not in logs  # nor the gateway password


async def test_a_worker_killed_between_send_and_ack_sends_once(
    broker: AbstractRobustConnection, results: Results, stack: Stack
) -> None:
    # The gateway takes the SMS at once and answers 3 s later: time to kill the worker.
    await configure(stack, latency_ms=3_000)
    payload = requested()
    await publish(broker, payload)

    async def taken() -> bool:
        return len(await messages(stack)) == 1

    await wait_for(taken, what="the gateway to take the SMS")
    stack.kill("sms-worker")
    await stack.processes["sms-worker"].wait()
    await configure(stack, latency_ms=0)
    await stack.start("sms-worker")  # the message is redelivered to it

    async def decided() -> bool:
        return "not sending it again" in logs_of(stack)

    await wait_for(decided, what="the redelivery to find the SMS maybe sent")
    assert await worker_state(stack, payload.verification_id) == "sending"
    # The SMS did go out, so its delivery report still comes, to the restarted worker.
    await results.wait(payload.verification_id, VerificationDelivered.event_type)
    assert len(await messages(stack)) == 1


async def test_an_expired_code_is_never_sent(
    broker: AbstractRobustConnection, results: Results, stack: Stack
) -> None:
    payload = requested(expires_in_s=-5)
    await publish(broker, payload)
    failed = await results.wait(payload.verification_id, VerificationDeliveryFailed.event_type)
    assert failed["reason_code"] == "expired"
    assert await messages(stack) == []


async def test_a_gateway_away_then_back_sends_once(
    broker: AbstractRobustConnection, results: Results, stack: Stack
) -> None:
    await configure(stack, unavailable_rate=1.0)
    payload = requested()
    await publish(broker, payload)

    async def retrying() -> bool:
        return "trying again" in logs_of(stack)

    await wait_for(retrying, what="the worker to retry")
    await configure(stack, unavailable_rate=0.0)
    await results.wait(payload.verification_id, VerificationCodeSent.event_type)
    assert len(await messages(stack)) == 1
    await results.collect()
    assert results.of(payload.verification_id, VerificationDeliveryFailed.event_type) == []


async def test_a_permanent_refusal_fails_the_verification(
    broker: AbstractRobustConnection, results: Results, stack: Stack
) -> None:
    await configure(stack, reject_prefixes=["4748"])
    payload = requested()
    await publish(broker, payload)
    failed = await results.wait(payload.verification_id, VerificationDeliveryFailed.event_type)
    assert failed["reason_code"] == "rejected"
    assert "Not routable" in failed["reason"]
    assert await messages(stack) == []


async def test_an_undelivered_report_and_a_number_abroad_fail_visibly(
    broker: AbstractRobustConnection, results: Results, stack: Stack
) -> None:
    await configure(stack, undelivered_prefixes=["4748"])
    undelivered, abroad = requested(), requested(msisdn="4612345678")
    await publish(broker, undelivered)
    await publish(broker, abroad)
    assert (await results.wait(undelivered.verification_id, VerificationDeliveryFailed.event_type))[
        "reason_code"
    ] == "undelivered"
    assert (await results.wait(abroad.verification_id, VerificationDeliveryFailed.event_type))[
        "reason_code"
    ] == "not_allowed"
    assert await messages(stack, "4612345678") == []
