"""Salary deductions through the whole system: Kari orders Ekstra Data 15GB through the portal,
the carrier completes it, and the payroll-worker records one deduction, publishes it for the
payroll system, and exports it in the month's files; its queue is empty afterwards."""

from __future__ import annotations

import json

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
