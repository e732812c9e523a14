"""`mport-ops stuck` and `mport-ops outbox` against the real services: each asked over its own
/ops endpoint (bearer OPS_API_TOKEN), none of its tables read by the tool."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mport_shared.db import create_engine
from mport_shared.ops.cli import main
from mport_shared.testing import MakeStack, order_body, wait_for
from sqlalchemy import text

pytestmark = pytest.mark.e2e

MPORT_OPS = Path(sys.executable).with_name("mport-ops")  # the console script the workspace installs


async def _console_script(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [str(MPORT_OPS), *argv], env=env, capture_output=True, text=True, timeout=60
    )


async def _in_process(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """The same command run in this process (quicker than a new interpreter), with `env`."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        code = await asyncio.to_thread(main, list(argv), out=out, err=err)
    return subprocess.CompletedProcess(list(argv), code, out.getvalue(), err.getvalue())


async def _execute(database_url: str, statement: str, **values: Any) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), values)
            assert result.rowcount == 1
    finally:
        await engine.dispose()


async def test_stuck_and_outbox_ask_each_service_over_its_own_endpoint(
    make_stack: MakeStack, tmp_path: Path
) -> None:
    # A carrier that takes an hour: the order stays submitted.
    stack = await make_stack(
        "carrier-simulator", "order-worker", "portal-api",
        extra_env={"carrier-simulator": {"CARRIER_SIM_LATENCY_MS": "3600000"}},
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=stack.url("portal-api"), timeout=10) as client:
        (await client.post("/auth/dev-login", data={"email": "kari.nordmann@demo.no"})).raise_for_status()
        placed = await client.post(
            "/api/v1/orders", json=await order_body(client, "ekstra-data-15gb"),
            headers={"X-CSRF-Token": client.cookies["csrftoken"], "Idempotency-Key": "ops-stuck-1"},
        )  # fmt: skip
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["id"]

        async def submitted() -> bool:
            return (await client.get(f"/api/v1/orders/{order_id}")).json()["status"] == "submitted"

        await wait_for(submitted, timeout_s=30, what="the order to be submitted")

    # As if it had all happened a while ago (the test may write the tables; the tool only asks).
    await _execute(
        stack.config.database_urls["portal-api"],
        "UPDATE orders SET updated_at = now() - interval '1 hour' WHERE id = :id", id=order_id,
    )  # fmt: skip
    await _execute(
        stack.config.database_urls["order-worker"],
        "UPDATE carrier_orders SET created_at = now() - interval '2 hours', "
        "deadline_at = now() - interval '1 minute', next_check_at = now() + interval '1 day' "
        "WHERE order_id = :id", id=order_id,
    )  # fmt: skip

    env = {
        "OPS_API_TOKEN": stack.config.ops_api_token,
        "MPORT_OPS_FILE": str(tmp_path / "none.json"),
        "MPORT_OPS_URLS": f"portal-api={stack.url('portal-api')},order-worker={stack.url('order-worker')}",
    }
    done = await _console_script({**os.environ, **env}, "stuck", "--json", "--older-than", "15m")
    assert done.returncode == 0, done.stderr
    answers = {a["service"]: a for a in json.loads(done.stdout)["services"]}
    [portal] = [o for o in answers["portal-api"]["orders"] if o["order_id"] == order_id]
    assert portal["status"] == "submitted"
    assert portal["age_s"] >= 3600
    assert "msisdn" not in portal  # no personal data
    [carrier] = [o for o in answers["order-worker"]["orders"] if o["order_id"] == order_id]
    assert carrier["why"] == "past its deadline"
    assert carrier["phase"] == "submitted"

    # Unchanged for an hour is not "over two hours"; past its deadline stays stuck.
    done = await _in_process(env, "stuck", "--json", "--older-than", "2h")
    answers = {a["service"]: a for a in json.loads(done.stdout)["services"]}
    assert answers["portal-api"]["orders"] == []
    assert [o["order_id"] for o in answers["order-worker"]["orders"]] == [order_id]
    table = await _in_process(env, "stuck")
    assert table.returncode == 0
    assert order_id in table.stdout
    assert "past its deadline" in table.stdout

    done = await _in_process(env, "outbox", "portal-api", "--json")
    assert done.returncode == 0, done.stderr
    [outbox] = json.loads(done.stdout)["services"]
    assert outbox["service"] == "portal-api"
    assert outbox["backlog"] == 0  # the relay has published everything
    # The sms-worker is not running here: said in one line, the others still shown, exit code 3.
    done = await _in_process(env, "outbox")
    assert done.returncode == 3
    assert (
        "mport-ops: error: sms-worker at http://127.0.0.1:8092 does not answer (ConnectError)" in done.stderr
    )
    assert "portal-api" in done.stdout
    assert "Traceback" not in done.stderr

    # The token opens them; without it 401, a wrong one 403 (a one-line error from the tool).
    wrong = await _in_process({**env, "OPS_API_TOKEN": "not-it"}, "stuck")
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines() == [
        f"mport-ops: error: {name} at {stack.url(name)} refused the token from OPS_API_TOKEN (403)"
        for name in ("portal-api", "order-worker")
    ]
    async with httpx.AsyncClient(base_url=stack.url("portal-api")) as anonymous:
        refused = await anonymous.get("/ops/stuck-orders")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
