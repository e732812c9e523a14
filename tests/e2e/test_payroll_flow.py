"""Salary deductions through the whole system: Kari orders Ekstra Data 15GB through the portal,
the carrier completes it, and the payroll-worker records one deduction, publishes it for the
payroll system, and exports it in the month's files; its queue is empty afterwards."""

from __future__ import annotations

import json
import uuid

import asyncpg
import httpx
import pytest
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.topology import EXCHANGE, declare_all
from mport_shared.testing import MakeStack, wait_for

from .test_order_flow import final_state, place, signed_in

pytestmark = pytest.mark.e2e


async def test_kari_s_ekstra_data_becomes_one_deduction_line_event_and_export_row(
    make_stack: MakeStack, amqp_url: str
) -> None:
    broker = await connect(amqp_url, name="test")
    channel = await confirming_channel(broker)
    await declare_all(channel)
    probe = await channel.declare_queue(
        "payroll-e2e-probe", durable=True, arguments={"x-queue-type": "quorum"}
    )
    await probe.bind(EXCHANGE, routing_key="mport.payroll.deduction_recorded.v1")
    try:
        stack = await make_stack()
        async with signed_in(stack, "kari.nordmann@demo.no") as (client, csrf):
            order = await place(client, csrf, "ekstra-data-15gb")
            assert (await final_state(client, order["id"]))["status"] == "completed"
        events: list[dict[str, object]] = []

        async def recorded() -> bool:
            while (message := await probe.get(no_ack=True, fail=False)) is not None:
                events.append(json.loads(message.body))
            return bool(events)

        await wait_for(recorded, timeout_s=30, what="PayrollDeductionRecorded")
        [event] = events
        line = event["data"]["line"]  # type: ignore[index]
        assert line["order_id"] == order["id"]
        assert line["employee_number"] == "1001"
        assert line["kind"] == "one_off"
        assert line["amount_ore"] > 0
        url = stack.config.database_urls["payroll-worker"].replace("postgresql+asyncpg", "postgresql")
        database = await asyncpg.connect(url)
        try:
            assert await database.fetchval("SELECT count(*) FROM deduction_lines") == 1
        finally:
            await database.close()
        async with httpx.AsyncClient(
            base_url=f"{stack.url('payroll-worker')}/internal/companies/{line['company_id']}",
            headers={"Authorization": f"Bearer {stack.config.payroll_api_token}"},
        ) as payroll:
            exported = (
                await payroll.get(f"/periods/{line['period']}/export", params={"format": "json"})
            ).json()
            assert [x["id"] for x in exported["lines"]] == [line["line_id"]]
            visma = (await payroll.get(f"/periods/{line['period']}/export", params={"format": "visma"})).text
            assert visma.split(";")[2:4] == ["1001", line["wage_type"]]
        queue = await channel.declare_queue("payroll-worker", passive=True)
        assert queue.declaration_result.message_count == 0
    finally:
        await broker.close()


async def test_kari_s_deductions_on_her_page_the_month_closed_and_exported_and_min_sky_ended(
    make_stack: MakeStack,
) -> None:
    """The issue's end to end: Ekstra Data on Kari's page and in the month's files, closed by the
    administrator through the portal; Min Sky charged for the month she ended it in, not after."""
    stack = await make_stack()
    async with signed_in(stack, "kari.nordmann@demo.no") as (kari, csrf):
        data = await place(kari, csrf, "ekstra-data-15gb")
        sky = await place(kari, csrf, "min-sky-10gb")
        for order in (data, sky):
            assert (await final_state(kari, order["id"]))["status"] == "completed"
        ending = await kari.post(
            "/api/v1/orders",
            json={"product_code": "min-sky-10gb", "action": "delete"},
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert ending.status_code == 202, ending.text
        assert (await final_state(kari, ending.json()["id"]))["status"] == "completed"

        async def on_her_page() -> bool:
            periods = (await kari.get("/api/v1/deductions")).json()["periods"]
            return any(line["order_id"] == data["id"] for p in periods for line in p["lines"])

        await wait_for(on_her_page, timeout_s=30, what="Ekstra Data on Mine lønnstrekk")
        [line] = [
            x for p in (await kari.get("/api/v1/deductions")).json()["periods"] for x in p["lines"]
            if x["order_id"] == data["id"]
        ]  # fmt: skip
        assert line["text"].startswith("Ekstra Data 15GB ")
        assert line["consent_id"] is not None
        month = line["period"]
    async with signed_in(stack, "admin@demo.no") as (ingrid, csrf):
        closed = await ingrid.post(
            f"/api/v1/admin/payroll/periods/{month}/close", headers={"X-CSRF-Token": csrf}
        )
        assert closed.status_code == 200, closed.text
        assert closed.json()["recurring_lines_generated"] == 1  # Min Sky for this month
        files = {}
        for fmt in ("json", "visma", "tripletex"):
            answer = await ingrid.get(f"/api/v1/admin/payroll/periods/{month}/export", params={"format": fmt})
            assert answer.status_code == 200, answer.text
            assert "attachment" in answer.headers["content-disposition"]
            files[fmt] = answer.content
        exported = json.loads(files["json"])["lines"]
        assert {x["order_id"] for x in exported} == {data["id"], sky["id"]}
        assert files["visma"].decode().startswith(f"{month[:4]};{int(month[5:])};1001;")
        assert b"Ekstra Data 15GB" in files["tripletex"]
        following = next_month(month)
        closed = await ingrid.post(
            f"/api/v1/admin/payroll/periods/{following}/close", headers={"X-CSRF-Token": csrf}
        )
        assert closed.status_code == 200, closed.text
        assert closed.json()["recurring_lines_generated"] == 0  # Min Sky ended: no line
        nothing = await ingrid.get(
            f"/api/v1/admin/payroll/periods/{following}/export", params={"format": "json"}
        )
        assert json.loads(nothing.content)["lines"] == []


def next_month(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"
