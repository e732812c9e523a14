"""The intake gate's rules, with a fake reading of the pipeline's backlog (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from portal_api.intake import IntakeGate, PipelineBusy


def gate(**values: float) -> IntakeGate:
    return IntakeGate(**{"max_backlog": 100, "wait_s": 5.0, "interval_s": 0.01, **values})  # type: ignore[arg-type]


def reader(reading: dict[str, int] | Exception) -> Callable[[], Awaitable[dict[str, int]]]:
    async def read() -> dict[str, int]:
        if isinstance(reading, Exception):
            raise reading
        return dict(reading)

    return read


async def test_an_order_goes_straight_in_while_every_part_is_within_the_limit() -> None:
    intake = gate()
    intake.observe({"outbox": 100, "order-worker": 3})
    await asyncio.wait_for(intake.admit(), 0.1)


async def test_an_order_waits_while_a_part_is_behind_and_goes_in_once_it_catches_up() -> None:
    intake = gate()
    intake.observe({"outbox": 5, "order-worker": 101})
    assert not intake.is_open
    waiting = asyncio.create_task(intake.admit())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    intake.observe({"outbox": 5, "order-worker": 40})
    await asyncio.wait_for(waiting, 0.1)


async def test_an_order_held_for_the_whole_wait_is_refused_with_what_was_behind() -> None:
    intake = gate(wait_s=0.05)
    intake.observe({"portal-api": 250})
    with pytest.raises(PipelineBusy) as refused:
        await intake.admit()
    assert refused.value.behind == {"portal-api": 250}
    assert refused.value.retry_after_s >= 1


async def test_the_watch_closes_and_opens_the_gate_on_its_readings() -> None:
    reading = {"outbox": 500}
    intake = gate()
    intake.start(reader(reading))
    try:
        await asyncio.sleep(0.05)
        assert not intake.is_open
        reading["outbox"] = 0
        await asyncio.sleep(0.05)
        assert intake.is_open
    finally:
        await intake.stop()


async def test_a_reading_that_fails_opens_the_gate_rather_than_refuse_on_a_guess() -> None:
    intake = gate()
    intake.observe({"outbox": 500})
    intake.start(reader(ConnectionError("broker away")))
    try:
        await asyncio.sleep(0.05)
        assert intake.is_open
    finally:
        await intake.stop()


async def test_max_backlog_0_turns_the_gate_off() -> None:
    intake = gate(max_backlog=0)
    intake.start(reader({"outbox": 10_000}))
    try:
        await asyncio.sleep(0.05)
        await asyncio.wait_for(intake.admit(), 0.1)
    finally:
        await intake.stop()


async def test_the_outbox_is_not_behind_while_the_broker_is_away() -> None:
    """A broker outage fills the outbox by design (orders are taken meanwhile): not a reason to wait."""
    from portal_api.intake import PipelineBacklog

    async def away() -> bool:
        return False

    backlog = PipelineBacklog(connection=None, relay=None, queues=(), broker_connected=away)  # type: ignore[arg-type]
    assert await backlog() == {}
