"""The SMS gateway simulator as the sms-worker and a developer see it: Kannel's sendsms answers,
delivery reports to dlr-url with Kannel's escapes filled in, /messages, and its controls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Request
from mport_shared.testing import served, wait_for
from pydantic import SecretStr
from sms_simulator import SimulatorSettings, create_app
from sms_simulator.app import SentMessage, fill_dlr_url

PASSWORD = "pw"
AUTH = {"username": "mport", "password": PASSWORD, "from": "mPort"}


@pytest.fixture
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SimulatorSettings(password=SecretStr(PASSWORD), dlr_delay_ms=10, dlr_retries=0))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://sim") as client,
    ):
        yield client


async def sendsms(client: httpx.AsyncClient, **params: str) -> httpx.Response:
    return await client.get("/cgi-bin/sendsms", params={**AUTH, **params})


async def test_kannels_answers(gateway: httpx.AsyncClient) -> None:
    accepted = await sendsms(gateway, to="4748123456", text="Hei")
    assert (accepted.status_code, accepted.text) == (202, "0: Accepted for delivery")
    wrong = await gateway.get("/cgi-bin/sendsms", params={**AUTH, "password": "nope", "to": "47"})
    assert (wrong.status_code, wrong.text) == (403, "Authorization failed for sendsms")
    nobody = await sendsms(gateway, text="Hei")
    assert (nobody.status_code, nobody.text) == (400, "Missing receiver number, rejected")


async def test_messages_newest_last_and_by_number(gateway: httpx.AsyncClient) -> None:
    await sendsms(gateway, to="4748123456", text="én")
    await sendsms(gateway, to="4791234567", text="to")
    await sendsms(gateway, to="+4748123456", text="tre")
    every = (await gateway.get("/messages")).json()
    assert [m["text"] for m in every] == ["én", "to", "tre"]
    assert {"id", "to", "from", "text", "status", "sent_at"} <= set(every[0])
    mine = (await gateway.get("/messages", params={"to": "4748123456"})).json()
    assert [m["text"] for m in mine] == ["én", "tre"]
    assert (await gateway.delete("/messages")).status_code == 204
    assert (await gateway.get("/messages")).json() == []


async def test_told_to_fail_reject_or_be_slow(gateway: httpx.AsyncClient) -> None:
    assert (await gateway.put("/simulator/config", json={"unavailable_rate": 1.0})).status_code == 200
    busy = await sendsms(gateway, to="4748123456", text="x")
    assert (busy.status_code, busy.text) == (503, "Temporal failure, try again later.")
    await gateway.put("/simulator/config", json={"unavailable_rate": 0.0, "reject_prefixes": ["46"]})
    abroad = await sendsms(gateway, to="4612345678", text="x")
    assert (abroad.status_code, abroad.text) == (403, "Not routable. Do not try again.")
    assert (await sendsms(gateway, to="4748123456", text="x")).status_code == 202
    await gateway.put("/simulator/config", json={"reject_all": True})
    assert (await sendsms(gateway, to="4748123456", text="x")).status_code == 403
    await gateway.put("/simulator/config", json={"reject_all": False, "latency_ms": 300})
    started = asyncio.get_running_loop().time()
    assert (await sendsms(gateway, to="4748123456", text="x")).status_code == 202
    assert asyncio.get_running_loop().time() - started >= 0.3
    misspelt = await gateway.put("/simulator/config", json={"latency": 1})
    assert misspelt.status_code == 422
    assert len((await gateway.get("/messages")).json()) == 2


def test_kannels_dlr_escapes_are_filled_in_url_encoded() -> None:
    message = SentMessage(
        id="m1",
        to="+4748123456",
        sender="mPort",
        text="æ ø",
        coding=0,
        dlr_mask=31,
        sent_at=None,  # type: ignore[arg-type]
    )
    url = fill_dlr_url(
        "http://w/dlr?token=t&id=v1&type=%d&reply=%A&to=%p&q=%q&from=%P&x=%Z&pct=100%%",
        message=message,
        report_type=8,
        reply="ACK/",
    )
    assert (
        url
        == "http://w/dlr?token=t&id=v1&type=8&reply=ACK%2F&to=%2B4748123456&q=4748123456&from=mPort&x=%Z&pct=100%"
    )


async def test_delivery_reports_go_to_the_dlr_url_at_the_smsc_then_delivered_or_not() -> None:
    reports: list[dict[str, Any]] = []
    receiver = FastAPI()

    @receiver.get("/dlr")
    async def dlr(request: Request) -> str:
        reports.append(dict(request.query_params))
        return "OK"

    settings = SimulatorSettings(
        password=SecretStr(PASSWORD), dlr_delay_ms=20, undelivered_prefixes=("4790",)
    )
    async with served(receiver) as receiver_url, served(create_app(settings)) as gateway_url:  # noqa: SIM117
        async with httpx.AsyncClient(base_url=gateway_url) as client:
            for to in ("4748123456", "4790011223"):
                dlr_url = f"{receiver_url}/dlr?token=t&id={to}&type=%d&reply=%A"
                answer = await sendsms(client, to=to, text="x", **{"dlr-mask": "31", "dlr-url": dlr_url})
                assert answer.status_code == 202
            # Only the bits asked for: a mask of 1 gets the final report alone.
            only_final = f"{receiver_url}/dlr?id=final&type=%d"
            await sendsms(client, to="4791234567", text="x", **{"dlr-mask": "1", "dlr-url": only_final})

            async def all_in() -> bool:
                return len(reports) == 5

            await wait_for(all_in, timeout_s=5, what="five reports")
            messages = (await client.get("/messages")).json()
    by_id: dict[str, list[tuple[str, str]]] = {}
    for report in reports:
        by_id.setdefault(report["id"], []).append((report["type"], report.get("reply", "")))
    assert [t for t, _ in by_id["4748123456"]] == ["8", "1"]
    assert by_id["4748123456"][0][1] == "ACK/"
    assert "DELIVRD" in by_id["4748123456"][1][1]
    assert [t for t, _ in by_id["4790011223"]] == ["8", "2"]
    assert by_id["final"] == [("1", "")]
    assert [m["status"] for m in messages] == ["delivered", "undelivered", "delivered"]
    assert [m["reports"] for m in messages] == [[8, 1], [8, 2], [1]]
    assert all("dlr_url" not in m for m in messages)  # it carries the receiver's token
