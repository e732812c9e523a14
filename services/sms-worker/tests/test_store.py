"""The store on a real PostgreSQL (and on SQLite): each change only from the state it expects,
its event in the same transaction, a report's outcome published once, and no code or text in
the table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mport_shared.db import create_engine, migrate, session_factory
from mport_shared.events import VerificationFailureCode
from mport_shared.testing import MakeDatabase
from sms_worker.domain import SendState
from sms_worker.models import tables
from sms_worker.store import ReportResult, SqlDeliveryStore
from sqlalchemy import select, text

from .fakes import CODE, NOW, request

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
async def store(
    request: pytest.FixtureRequest, make_database: MakeDatabase, tmp_path: Path
) -> AsyncIterator[SqlDeliveryStore]:
    """On PostgreSQL, and on SQLite as `make run` has it."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'sms-worker.db'}"
        await migrate("sms_worker:migrations", url)
    else:
        url = await make_database("sms_worker:migrations")
    engine = create_engine(url)
    yield SqlDeliveryStore(session_factory(engine))
    await engine.dispose()


async def published(store: SqlDeliveryStore) -> list[str]:
    async with store.sessions() as session:
        rows = (await session.execute(select(tables.outbox.c.routing_key).order_by(tables.outbox.c.id))).all()
    return [row.routing_key.rsplit(".", 2)[-2] for row in rows]


async def test_one_send_one_event_and_the_outcome_once(store: SqlDeliveryStore) -> None:
    payload = request()
    key = str(payload.verification_id)
    first = await store.claim(payload, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    again = await store.claim(payload, traceparent="other")
    assert first.state is again.state is SendState.PENDING
    assert await store.start_attempt(key)
    assert not await store.start_attempt(key)  # a second delivery of the message cannot
    assert await store.sent(key, gateway_message_id=key, at=NOW)
    assert not await store.sent(key, gateway_message_id=key, at=NOW)
    assert (await store.claim(payload, traceparent="")).state is SendState.SENT
    assert await store.report(key, report_type=8, reply="ACK/", at=NOW) == ReportResult.RECORDED
    assert await store.report(key, report_type=1, reply="", at=NOW) == ReportResult.PUBLISHED
    assert await store.report(key, report_type=1, reply="", at=NOW) == ReportResult.RECORDED
    assert await store.report(key, report_type=2, reply="", at=NOW) == ReportResult.RECORDED
    assert await store.report("nobody", report_type=1, reply="", at=NOW) == ReportResult.UNKNOWN
    assert await published(store) == ["code_sent", "delivered"]
    async with store.sessions() as session:
        row = (await session.execute(text("SELECT * FROM sms_deliveries"))).mappings().one()
        bodies = (await session.execute(select(tables.outbox.c.body))).scalars().all()
    assert CODE not in json.dumps({k: str(v) for k, v in row.items()})
    assert all(CODE not in body for body in bodies)
    # The events continue the trace the request came in.
    assert all("a" * 32 in json.loads(body)["traceparent"] for body in bodies)


async def test_a_failure_is_recorded_once_and_a_report_for_it_publishes_nothing(
    store: SqlDeliveryStore,
) -> None:
    payload = request()
    key = str(payload.verification_id)
    await store.claim(payload, traceparent="")
    for first in (True, False):
        moved = await store.fail(
            key, code=VerificationFailureCode.EXPIRED, reason="expired", at=NOW, expected=SendState.PENDING
        )
        assert moved is first
    assert not await store.start_attempt(key)
    assert await store.report(key, report_type=1, reply="", at=NOW) == ReportResult.RECORDED
    assert await published(store) == ["delivery_failed"]


async def test_a_report_overtaking_the_answer_or_after_an_unknown_outcome_is_published(
    store: SqlDeliveryStore,
) -> None:
    for finish in ("overtaken", "unknown"):
        payload = request()
        key = str(payload.verification_id)
        await store.claim(payload, traceparent="")
        await store.start_attempt(key)
        if finish == "unknown":
            assert await store.unknown(key, error="ReadTimeout")
        assert await store.report(key, report_type=1, reply="", at=NOW) == ReportResult.PUBLISHED
    assert await published(store) == ["delivered", "delivered"]
