"""`mport-ops` without a broker: parsing, redaction, grouping, describing dead letters, --help on
every command, one-line errors and exit codes; and the services' /ops endpoints on a real
PostgreSQL database (token: 404 when unset, 401 without, 403 wrong)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mport_shared.db import create_engine, session_factory
from mport_shared.messaging.tables import messaging_tables
from mport_shared.messaging.topology import ORDER_WORKER, definitions, delivery_limit_policies
from mport_shared.ops import dead_letters as dl
from mport_shared.ops.api import ops_router
from mport_shared.ops.cli import build_parser, main, parse_duration, parse_when
from mport_shared.ops.redact import REDACTED, redact
from mport_shared.ops.services import endpoints
from mport_shared.testing import MakeDatabase
from pydantic import SecretStr
from sqlalchemy import MetaData, insert


def test_durations_and_times(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_when("2h", now=now) == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert parse_when("2026-05-01T13:00:00Z") == datetime(2026, 5, 1, 13, 0, tzinfo=UTC)
    assert parse_when("2026-05-01T13:00:00") == datetime(2026, 5, 1, 13, 0, tzinfo=UTC)  # UTC when bare
    assert parse_when("2026-05-01T15:00:00+02:00") == datetime(2026, 5, 1, 13, 0, tzinfo=UTC)
    code, _, _ = _run("dlq", "replay", "--since", "yesterday")
    assert code == 2
    assert "'yesterday' is neither an ISO 8601 time" in capsys.readouterr().err


def test_secrets_and_one_time_codes_are_redacted_wherever_they_are() -> None:
    message = {
        "data": {"code": "123456", "product_code": "ekstra-data-15gb", "msisdn": "4791234567"},
        "Authorization": "Bearer x",
        "nested": [{"sms_gateway_password": "p", "X-Api-Key": "k", "refresh_token": "t", "PIN": "1234"}],
        "client_secret": "s",
        "failure_code": "carrier.rejected",
    }
    assert redact(message) == {
        "data": {"code": REDACTED, "product_code": "ekstra-data-15gb", "msisdn": "4791234567"},
        "Authorization": REDACTED,
        "nested": [{"sms_gateway_password": REDACTED, "X-Api-Key": REDACTED, "refresh_token": REDACTED,
                    "PIN": REDACTED}],
        "client_secret": REDACTED,
        "failure_code": "carrier.rejected",
    }  # fmt: skip


def test_a_group_id_is_stable_and_ignores_ids_and_numbers_in_the_reason() -> None:
    one = dl.group_id(
        "CarrierUnavailable: order 6f1c2d3e-0000-4000-8000-000000000001 timed out after 10 s", "t"
    )
    two = dl.group_id(
        "CarrierUnavailable: order 9a9a9a9a-1111-4111-8111-111111111111 timed out after 12 s", "t"
    )
    assert one == two == dl.group_id("CarrierUnavailable: order <id> timed out after N s", "t")
    assert len(one) == 8
    assert one == "d454a6b1"  # a hash of the pattern and type: the same on every run and machine
    assert dl.group_id("other", "t") != one
    assert dl.group_id("CarrierUnavailable: order <id> timed out after N s", "u") != one


@dataclass
class FakeMessage:
    headers: Mapping[str, Any]
    message_id: str = "m-1"
    correlation_id: str | None = "c-1"
    type: str | None = "mport.order.placed.v1"
    body: bytes = b"{}"
    content_type: str | None = "application/cloudevents+json"
    extra: dict[str, Any] = field(default_factory=dict)


def test_a_broker_dead_letter_is_described_in_words_and_a_consumer_one_by_its_reason() -> None:
    died = datetime(2026, 5, 1, 13, 0, tzinfo=UTC)
    crashed = FakeMessage({
        "x-death": [
            {"reason": "delivery_limit", "queue": "order-worker", "time": died, "count": 1},
            {"reason": "expired", "queue": "order-worker.retry.1000ms", "time": died - timedelta(minutes=5)},
        ],
        "x-mport-reason": "ConnectionError: before",  # an earlier retry's
        "x-mport-attempt": 2,
        "x-mport-first-failed-at": (died - timedelta(minutes=6)).isoformat(),
    })  # fmt: skip
    letter = dl.describe(ORDER_WORKER, crashed)  # type: ignore[arg-type]
    assert letter.dead_lettered_by == "broker"
    assert letter.reason == (
        "the broker's delivery limit: delivered to order-worker again and again, never settled (the worker "
        "died or lost its connection every time it handled it) [delivery_limit]"
    )
    assert letter.last_failure == died
    assert letter.first_failure == died - timedelta(minutes=6)
    assert letter.attempts == 2

    gave_up = FakeMessage({
        "x-death": [{"reason": "expired", "queue": "order-worker.retry.1000ms", "time": died}],
        "x-mport-reason": "CarrierUnavailable: down",
        "x-mport-attempts": 4,
        "x-mport-failed-at": "2026-05-01T13:05:00+00:00",
        "x-mport-first-failed-at": "2026-05-01T12:59:00+00:00",
    })  # fmt: skip
    letter = dl.describe(ORDER_WORKER, gave_up)  # type: ignore[arg-type]
    assert (letter.dead_lettered_by, letter.reason, letter.attempts) == (
        "consumer",
        "CarrierUnavailable: down",
        4,
    )
    assert letter.first_failure == datetime(2026, 5, 1, 12, 59, tzinfo=UTC)
    assert letter.last_failure == datetime(2026, 5, 1, 13, 5, tzinfo=UTC)
    assert dl.Selection(since=datetime(2026, 5, 1, 13, 1, tzinfo=UTC))(letter)
    assert not dl.Selection(until=datetime(2026, 5, 1, 13, 1, tzinfo=UTC))(letter)


def _commands(parser: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
    return found


def _run(*argv: str, stdin: Any = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(list(argv), out=out, err=err, stdin=stdin)
    except SystemExit as exit_:  # argparse: --help, usage errors
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands(build_parser())
    assert {c for c in commands if len(c) <= 2} >= {
        (), ("queues",), ("dlq",), ("dlq", "list"), ("dlq", "show"), ("dlq", "replay"), ("dlq", "purge"),
        ("outbox",), ("stuck",),
    }  # fmt: skip
    for command in commands:
        assert _run(*command, "--help")[0] == 0, command
        assert "usage: mport-ops" in capsys.readouterr().out
    assert _run("dlq", "replay", "--help")[0] == 0
    assert "the consumer's inbox drops the second copy" in " ".join(capsys.readouterr().out.split())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_failures_are_one_line_with_an_exit_code() -> None:
    port = _closed_port()
    broker = f"amqp://guest:secret-pw@127.0.0.1:{port}/"
    code, _, err = _run("--amqp-url", broker, "dlq", "list")
    assert code == 3
    assert err.startswith(
        f"mport-ops: error: no connection to the broker at 127.0.0.1:{port}/ (AMQPConnectionError)"
    )
    assert err.count("\n") == 1
    code, _, err = _run("queues", "--api-url", f"http://127.0.0.1:{port}/api")
    assert code == 3
    assert err.startswith(
        f"mport-ops: error: the management API at http://127.0.0.1:{port}/api does not answer"
    )
    assert _run("dlq", "list", "nobody")[0] == 2
    code, _, err = _run("dlq", "replay", "order-worker")
    assert code == 2
    assert "say which dead letters" in err
    code, _, err = _run("dlq", "purge", "--all", "--id", "x")
    assert code == 2
    assert "--all goes alone" in err
    # Through the console script too: no traceback, and the password is never printed.
    done = subprocess.run(
        [sys.executable, "-m", "mport_shared.ops", "--amqp-url", broker, "dlq", "list", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert "secret-pw" not in done.stderr


def test_service_urls_and_token_from_the_file_the_environment_and_flags(tmp_path: Any) -> None:
    ops_file = tmp_path / "ops.json"
    ops_file.write_text(json.dumps({"services": {"portal-api": "http://p:1"}, "token": "from-file"}))
    ends = endpoints({"MPORT_VAR_DIR": str(tmp_path)})
    assert ends.urls["portal-api"] == "http://p:1"
    assert ends.urls["order-worker"] == "http://127.0.0.1:8091"  # make run's default
    assert ends.token == "from-file"
    ends = endpoints(
        {
            "MPORT_OPS_FILE": str(ops_file),
            "OPS_API_TOKEN": "env",
            "MPORT_OPS_URLS": "order-worker=http://o:2/",
        },
        ["portal-api=http://flag:3"],
    )
    assert (ends.urls["portal-api"], ends.urls["order-worker"], ends.token) == (
        "http://flag:3",
        "http://o:2",
        "env",
    )
    code, _, err = _run("stuck", "--url", "nobody=http://x:1")
    assert code == 2
    assert "unknown service 'nobody'" in err


def test_the_definitions_carry_a_delivery_limit_policy_per_work_queue() -> None:
    policies = {p["pattern"]: p["definition"] for p in definitions()["policies"]}
    assert policies["^order\\-worker$"] == {
        "delivery-limit": 20, "dead-letter-exchange": "",
        "dead-letter-routing-key": "order-worker.dead-letter", "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
    }  # fmt: skip
    # Never on a dead-letter queue: listing requeues its messages, which must not drop one.
    assert not any("dead-letter" in p["pattern"] for p in delivery_limit_policies(delivery_limit=3))


@pytest.mark.integration
async def test_the_ops_endpoints_answer_from_the_services_own_outbox(make_database: MakeDatabase) -> None:
    metadata = MetaData()
    tables = messaging_tables(metadata)
    engine = create_engine(await make_database(None))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        now = datetime.now(UTC)
        rows = [
            {"message_id": f"m{i}", "routing_key": "t", "body": "{}", "headers": {},
             "created_at": at, "sent_at": sent}
            for i, (at, sent) in enumerate(
                [(now - timedelta(minutes=10), None), (now - timedelta(minutes=1), None), (now, now)]
            )
        ]  # fmt: skip
        await conn.execute(insert(tables.outbox), rows)
    sessions = session_factory(engine)

    def app(token: str | None) -> httpx.AsyncClient:
        made = FastAPI()
        made.include_router(
            ops_router(service="svc", token=SecretStr(token) if token else None, sessions=sessions,
                       outbox=tables.outbox)
        )  # fmt: skip
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=made), base_url="http://svc")

    async with app(None) as client:
        assert (await client.get("/ops/outbox", headers={"Authorization": "Bearer x"})).status_code == 404
    async with app("the-token") as client:
        missing = await client.get("/ops/outbox")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["type"] == "https://mport.no/problems/ops-api-unauthorized"
        wrong = await client.get("/ops/outbox", headers={"Authorization": "Bearer the-tokeN"})
        assert wrong.status_code == 403
        assert wrong.headers["content-type"] == "application/problem+json"
        answer = await client.get("/ops/outbox", headers={"Authorization": "Bearer the-token"})
        assert answer.status_code == 200
        body = answer.json()
        assert body["service"] == "svc"
        assert body["backlog"] == 2
        assert 590 <= body["oldest_age_s"] <= 700
        assert (
            await client.get("/ops/stuck-orders", headers={"Authorization": "Bearer the-token"})
        ).status_code == 404
    await engine.dispose()
