"""CARRIER_SIM_STATE_FILE: orders, their planned times and hubs survive a restart."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from carrier_simulator import SimulatorSettings, create_app
from mport_shared.testing import wait_for

from .conftest import ORDERS, Listener, RunCarrier, RunListener, order_body, until


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_orders_and_hubs_come_back_after_a_restart_and_overdue_orders_finish(
    tmp_path: Path, run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    state = tmp_path / "var" / "carrier.json"
    listener = Listener()
    async with run_listener(listener) as port:
        async with run_carrier(state_file=state) as first:
            hub = await first.register(f"http://127.0.0.1:{port}/?token=abc")
            done = await first.order("ord-done")
            await until(lambda: len(listener.states(done["id"])) == 3, "news of the done order")
            done_before = await first.get(done["id"])

            async def saved_while_running() -> bool:
                return state.exists() and len(json.loads(state.read_text())["orders"]) == 1

            await wait_for(saved_while_running, timeout_s=3, interval_s=0.01, what="a save within 0.5 s")
            await first.client.put("/simulator/config", json={"latency_ms": 2000})
            later = await first.order("ord-later")  # still ahead when the simulator is back
            await first.client.put("/simulator/config", json={"latency_ms": 500})
            overdue = await first.order("ord-overdue")  # finishes while the simulator is stopped
        # Stopped: the last changes were saved on the way out.
        overdue_heard_before = listener.states(overdue["id"])
        due = when(overdue["expectedCompletionDate"]).timestamp() - time.time()
        await asyncio.sleep(max(due, 0) + 0.05)  # the overdue order's time passes while nothing runs

        async with run_carrier(state_file=state) as second:
            hubs = await second.hubs()
            again = await second.client.post(ORDERS, json=order_body("ord-done"))
            restored_done = await second.get(done["id"])

            await until(lambda: listener.states(overdue["id"])[-1:] == ["completed"], "overdue completed")
            overdue_now = await second.get(overdue["id"])
            later_now = await second.get(later["id"])

            async def later_completed() -> bool:
                return bool((await second.get(later["id"]))["state"] == "completed")

            await wait_for(later_completed, timeout_s=3, interval_s=0.01, what="later completed")
            later_final = await second.get(later["id"])
            await until(lambda: len(listener.states(later["id"])) == 3, "news of the later order")

    # The hub, with its id and callback, still gets notifications after the restart.
    assert [(h["id"], h["callback"]) for h in hubs] == [(hub["id"], f"http://127.0.0.1:{port}/?token=abc")]
    # An order that was done is back as it was, and its externalId still dedups.
    assert restored_done == done_before
    assert restored_done["state"] == "completed"
    assert listener.states(done["id"]) == ["acknowledged", "inProgress", "completed"]
    assert again.status_code == 200
    assert again.json()["id"] == done["id"]
    # The overdue one finished at once, going through inProgress, and its news went out.
    assert overdue_now["state"] == "completed"
    assert overdue_now["expectedCompletionDate"] == overdue["expectedCompletionDate"]
    assert listener.states(overdue["id"]) == ["acknowledged", "inProgress", "completed"]
    # The later one kept its planned time: not finished early, finished on time.
    assert later_now["state"] in ("acknowledged", "inProgress")
    assert later_final["expectedCompletionDate"] == later["expectedCompletionDate"]
    assert when(later_final["completionDate"]) >= when(later["expectedCompletionDate"])
    assert listener.states(later["id"]) == ["acknowledged", "inProgress", "completed"]
    assert "completed" not in overdue_heard_before
    assert {r.query for r in listener.received} == {"token=abc"}
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in state.parent.iterdir()) == ["carrier.json"]


async def test_restored_orders_respect_max_orders(tmp_path: Path, run_carrier: RunCarrier) -> None:
    state = tmp_path / "carrier.json"
    async with run_carrier(state_file=state) as first:
        ids = [(await first.order(f"ord-{n}"))["id"] for n in range(3)]
    async with run_carrier(state_file=state, max_orders=2) as second:
        listed = (await second.client.get(ORDERS)).json()
        oldest = await second.client.get(f"{ORDERS}/{ids[0]}")

    assert [order["id"] for order in listed] == ids[1:]
    assert oldest.status_code == 404


async def test_a_hub_deleted_before_the_restart_stays_deleted(
    tmp_path: Path, run_carrier: RunCarrier
) -> None:
    state = tmp_path / "carrier.json"
    async with run_carrier(state_file=state) as first:
        kept = await first.register("http://127.0.0.1:1/kept")
        gone = await first.register("http://127.0.0.1:1/gone")
        await first.client.delete(f"/tmf-api/productOrderingManagement/v5/hub/{gone['id']}")
    async with run_carrier(state_file=state) as second:
        hubs = await second.hubs()

    assert [hub["id"] for hub in hubs] == [kept["id"]]


async def test_without_a_state_file_nothing_survives(tmp_path: Path, run_carrier: RunCarrier) -> None:
    async with run_carrier() as first:
        await first.order("ord-1")
        await first.register("http://127.0.0.1:1/")
    async with run_carrier() as second:
        listed = (await second.client.get(ORDERS)).json()
        hubs = await second.hubs()

    assert (listed, hubs) == ([], [])
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a look at an empty directory


async def test_a_file_that_is_not_a_state_file_stops_the_start(tmp_path: Path) -> None:
    state = tmp_path / "carrier.json"
    state.write_text('{"something": "else"}')
    app = create_app(SimulatorSettings(state_file=state))

    with pytest.raises(ValueError, match="not a carrier simulator state file"):
        async with app.router.lifespan_context(app):
            pass
    assert state.read_text() == '{"something": "else"}'


def test_the_state_file_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CARRIER_SIM_STATE_FILE", str(tmp_path / "s.json"))
    assert SimulatorSettings().state_file == tmp_path / "s.json"
    monkeypatch.delenv("CARRIER_SIM_STATE_FILE")
    assert SimulatorSettings().state_file is None
