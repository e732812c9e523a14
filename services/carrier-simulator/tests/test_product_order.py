"""The carrier simulator through HTTP: life cycle, dedup by externalId, failures, errors, config."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from carrier_simulator import SimulatorSettings, create_app
from carrier_simulator.orders import SIMULATED_FAILURE_REASON
from pydantic import ValidationError

ORDERS = "/tmf-api/productOrderingManagement/v5/productOrder"
TERMINAL = {"completed", "failed"}
QUIET_CONFIG = {
    "latency_ms": 0,
    "latency_jitter_ms": 0,
    "failure_rate": 0.0,
    "unavailable_rate": 0.0,
    "notification_drop_rate": 0.0,
    "down": False,
}


@asynccontextmanager
async def simulator(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a fresh simulator; behaviour not overridden is the quiet default."""
    settings: dict[str, Any] = {"latency_ms": 0, "failure_rate": 0.0, "unavailable_rate": 0.0}
    app = create_app(SimulatorSettings(**(settings | overrides)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://carrier.test") as client:
        yield client


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def order_body(external_id: str = "ord-1", offering: str = "Surf-5GB") -> dict[str, Any]:
    return {
        "@type": "ProductOrder",
        "externalId": [
            {
                "id": external_id,
                "owner": "mPort",
                "externalIdentifierType": "order",
                "@type": "ExternalIdentifier",
            }
        ],
        "productOrderItem": [
            {
                "id": "1",
                "action": "add",
                "@type": "ProductOrderItem",
                "productOffering": {"id": offering, "@type": "ProductOfferingRef"},
                "product": {
                    "@type": "Product",
                    "productCharacteristic": [
                        {
                            "name": "msisdn",
                            "value": "4791234567",
                            "valueType": "string",
                            "@type": "StringCharacteristic",
                        }
                    ],
                },
            }
        ],
    }


async def poll_until_terminal(
    client: httpx.AsyncClient, order_id: str, *, timeout_s: float = 2.0
) -> tuple[dict[str, Any], list[str]]:
    """The order once completed or failed, and every state seen on the way."""
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while True:
        response = await client.get(f"{ORDERS}/{order_id}")
        assert response.status_code == 200
        order: dict[str, Any] = response.json()
        if not seen or seen[-1] != order["state"]:
            seen.append(order["state"])
        if order["state"] in TERMINAL:
            return order, seen
        assert time.monotonic() < deadline, f"order still {order['state']} after {timeout_s}s"
        await asyncio.sleep(0.002)


async def test_new_order_is_acknowledged_then_completed() -> None:
    async with simulator(latency_ms=20) as client:
        response = await client.post(ORDERS, json=order_body())

        assert response.status_code == 201
        created = response.json()
        assert created["@type"] == "ProductOrder"
        assert created["state"] == "acknowledged"
        assert created["href"] == f"{ORDERS}/{created['id']}"
        assert response.headers["location"] == created["href"]
        assert created["externalId"][0]["id"] == "ord-1"
        assert created["productOrderItem"][0]["state"] == "acknowledged"
        assert "completionDate" not in created

        final, _ = await poll_until_terminal(client, created["id"])
        assert final["state"] == "completed"
        assert final["productOrderItem"][0]["state"] == "completed"
        assert "completionDate" in final
        assert "productOrderErrorMessage" not in final


async def test_a_zero_latency_order_is_completed_in_the_answer() -> None:
    # A carrier that provisions at once answers with the outcome; GET shows the same.
    async with simulator(latency_ms=0) as client:
        response = await client.post(ORDERS, json=order_body())
        created = response.json()
        again = (await client.get(f"{ORDERS}/{created['id']}")).json()

    assert response.status_code == 201
    assert response.headers["location"] == created["href"]
    assert created["state"] == "completed"
    assert created["productOrderItem"][0]["state"] == "completed"
    assert created["expectedCompletionDate"] == created["creationDate"]
    assert when(created["completionDate"]) >= when(created["creationDate"])
    assert "productOrderErrorMessage" not in created
    assert again == created


async def test_latency_is_respected_and_order_passes_through_in_progress() -> None:
    latency_s = 0.3
    async with simulator(latency_ms=int(latency_s * 1000)) as client:
        started = time.monotonic()
        created = (await client.post(ORDERS, json=order_body())).json()

        first_look = (await client.get(f"{ORDERS}/{created['id']}")).json()
        assert first_look["state"] == "acknowledged"

        final, seen = await poll_until_terminal(client, created["id"])
        elapsed = time.monotonic() - started

    assert final["state"] == "completed"
    assert seen == ["acknowledged", "inProgress", "completed"]
    assert elapsed >= latency_s - 0.01


async def test_repeated_external_id_returns_the_existing_order() -> None:
    # A long latency keeps the state still, so both answers must be identical.
    async with simulator(latency_ms=60_000) as client:
        first = await client.post(ORDERS, json=order_body("ord-dup"))
        second = await client.post(ORDERS, json=order_body("ord-dup"))
        listed = await client.get(ORDERS, params={"externalId": "ord-dup"})

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert [order["id"] for order in listed.json()] == [first.json()["id"]]


async def test_concurrent_posts_with_one_external_id_make_one_order() -> None:
    async with simulator() as client:
        responses = await asyncio.gather(
            *(client.post(ORDERS, json=order_body("ord-race")) for _ in range(25))
        )
        everything = await client.get(ORDERS)

    assert sorted(response.status_code for response in responses) == [200] * 24 + [201]
    assert len({response.json()["id"] for response in responses}) == 1
    assert len(everything.json()) == 1


async def test_unknown_product_offering_fails_the_order_with_a_reason() -> None:
    async with simulator() as client:
        created = (await client.post(ORDERS, json=order_body(offering="Surf-999GB"))).json()
        final, _ = await poll_until_terminal(client, created["id"])

    # Zero latency: the answer already says it failed, and why.
    assert created == final
    assert final["state"] == "failed"
    [error] = final["productOrderErrorMessage"]
    assert error["@type"] == "ProductOrderErrorMessage"
    assert error["reason"] == "Unknown product offering 'Surf-999GB'"
    assert error["productOrderItem"] == [
        {"productOrderId": created["id"], "productOrderItemId": "1", "@type": "ProductOrderItemRef"}
    ]
    assert final["productOrderItem"][0]["state"] == "failed"


async def test_failure_rate_of_one_fails_every_known_order() -> None:
    async with simulator(failure_rate=1.0) as client:
        created = (await client.post(ORDERS, json=order_body())).json()
        final, _ = await poll_until_terminal(client, created["id"])

    assert created == final
    assert final["state"] == "failed"
    assert final["productOrderErrorMessage"][0]["reason"] == SIMULATED_FAILURE_REASON


async def test_unknown_order_is_404_with_a_tmf_error() -> None:
    async with simulator() as client:
        response = await client.get(f"{ORDERS}/no-such-order")

    assert response.status_code == 404
    body = response.json()
    assert body["@type"] == "Error"
    assert body["code"] == "NOT_FOUND"
    assert body["status"] == "404"
    assert "no-such-order" in body["reason"]


def _without(key: str) -> dict[str, Any]:
    body = order_body()
    del body[key]
    return body


def _item_with(**changes: Any) -> dict[str, Any]:
    body = order_body()
    body["productOrderItem"][0].update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        pytest.param(_without("@type"), "@type", id="no-type"),
        pytest.param(_without("productOrderItem"), "productOrderItem", id="no-items"),
        pytest.param({**order_body(), "productOrderItem": []}, "productOrderItem", id="empty"),
        pytest.param(_item_with(action="replace"), "action", id="bad-action"),
        pytest.param(_item_with(productOffering=None), "productOffering", id="no-offering"),
        pytest.param({**order_body(), "externalId": [{"id": "x"}]}, "externalId.0.@type", id="bare-extid"),
    ],
)
async def test_invalid_body_is_400_with_a_tmf_error(body: dict[str, Any], complaint: str) -> None:
    async with simulator() as client:
        response = await client.post(ORDERS, json=body)
        listed = await client.get(ORDERS)

    assert response.status_code == 400
    error = response.json()
    assert error["@type"] == "Error"
    assert (error["code"], error["reason"], error["status"]) == (
        "INVALID_REQUEST",
        "Invalid request",
        "400",
    )
    assert complaint in error["message"]
    assert listed.json() == []


async def test_body_that_is_not_json_is_400() -> None:
    async with simulator() as client:
        response = await client.post(ORDERS, content=b"{nope", headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json()["message"] == "body: JSON decode error"


async def test_list_by_external_id_and_paging() -> None:
    async with simulator(latency_ms=60_000) as client:
        ids = [(await client.post(ORDERS, json=order_body(f"ord-{n}"))).json()["id"] for n in range(3)]
        for_one = await client.get(ORDERS, params={"externalId": "ord-1"})
        for_none = await client.get(ORDERS, params={"externalId": "ord-unknown"})
        page = await client.get(ORDERS, params={"offset": 1, "limit": 1})
        bad_limit = await client.get(ORDERS, params={"limit": 0})

    assert [order["id"] for order in for_one.json()] == [ids[1]]
    assert for_none.json() == []
    assert [order["id"] for order in page.json()] == [ids[1]]
    assert (page.headers["x-total-count"], page.headers["x-result-count"]) == ("3", "1")
    assert bad_limit.status_code == 400


async def test_config_can_make_the_carrier_unavailable_at_run_time() -> None:
    async with simulator() as client:
        changed = await client.put("/simulator/config", json={"unavailable_rate": 1.0})
        refused = await client.post(ORDERS, json=order_body())
        health = await client.get("/healthz")
        config = await client.get("/simulator/config")
        await client.put("/simulator/config", json={"unavailable_rate": 0.0})
        accepted = await client.post(ORDERS, json=order_body())

    assert changed.json() == QUIET_CONFIG | {"unavailable_rate": 1.0}
    assert refused.status_code == 503
    assert refused.json()["@type"] == "Error"
    assert refused.json()["code"] == "SERVICE_UNAVAILABLE"
    assert health.status_code == 200
    assert config.json()["unavailable_rate"] == 1.0
    # The refused POST made no order, so the retry is the first one for its externalId.
    assert accepted.status_code == 201


@pytest.mark.parametrize(
    "change",
    [
        {"latency_ms": -1},
        {"failure_rate": 1.5},
        {"latency": 5},
        {"notification_drop_rate": 2},
        {"latency_jitter_ms": -5},
        {"down": "maybe"},
    ],
    ids=str,
)
async def test_config_rejects_bad_values(change: dict[str, Any]) -> None:
    async with simulator() as client:
        response = await client.put("/simulator/config", json=change)
        config = await client.get("/simulator/config")

    assert response.status_code == 400
    assert response.json()["@type"] == "Error"
    assert config.json() == QUIET_CONFIG


async def test_oldest_orders_are_forgotten_beyond_max_orders() -> None:
    async with simulator(max_orders=2) as client:
        ids = [(await client.post(ORDERS, json=order_body(f"ord-{n}"))).json()["id"] for n in range(3)]
        oldest = await client.get(f"{ORDERS}/{ids[0]}")
        listed = await client.get(ORDERS)

    assert oldest.status_code == 404
    assert [order["id"] for order in listed.json()] == ids[1:]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARRIER_SIM_PORT", "9090")
    monkeypatch.setenv("CARRIER_SIM_LATENCY_MS", "25")
    monkeypatch.setenv("CARRIER_SIM_FAILURE_RATE", "0.1")
    monkeypatch.setenv("CARRIER_SIM_UNAVAILABLE_RATE", "0.2")
    monkeypatch.setenv("CARRIER_SIM_KNOWN_OFFERINGS", "Surf-5GB, Nettvern")

    settings = SimulatorSettings()

    assert (settings.port, settings.latency_ms) == (9090, 25)
    assert (settings.failure_rate, settings.unavailable_rate) == (0.1, 0.2)
    assert settings.known_offerings == ("Surf-5GB", "Nettvern")


@pytest.mark.parametrize(
    "params",
    [
        {"offset": "-1"},
        {"offset": "abc"},
        {"offset": "1.5"},
        {"offset": "1.0"},
        {"offset": "1e3"},
        {"offset": ""},
        {"offset": str(10**9 + 1)},
        {"offset": str(10**30)},
        {"offset": "9" * 5000},
        {"limit": "0"},
        {"limit": "-3"},
        {"limit": "abc"},
        {"limit": "1.5"},
        {"limit": " 5"},
        {"limit": "1001"},
        {"limit": str(10**30)},
        {"state": "done"},
        {"state": "COMPLETED"},
    ],
    ids=lambda params: "&".join(f"{k}={v[:12]}" for k, v in params.items()),
)
async def test_bad_query_parameters_are_400_with_a_tmf_error(params: dict[str, str]) -> None:
    async with simulator() as client:
        await client.post(ORDERS, json=order_body())
        response = await client.get(ORDERS, params=params)

    assert response.status_code == 400
    error = response.json()
    assert (error["@type"], error["code"], error["status"]) == ("Error", "INVALID_REQUEST", "400")
    [name] = params
    assert error["message"].startswith(f"{name}: ")


async def test_query_parameters_at_their_bounds_are_accepted() -> None:
    async with simulator(latency_ms=60_000) as client:
        await client.post(ORDERS, json=order_body())
        far = await client.get(ORDERS, params={"offset": str(10**9), "limit": "1000"})
        first = await client.get(ORDERS, params={"offset": "0", "limit": "1", "state": "acknowledged"})
        none_in_state = await client.get(ORDERS, params={"state": "completed"})

    assert (far.status_code, far.json(), far.headers["x-total-count"]) == (200, [], "1")
    assert [order["state"] for order in first.json()] == ["acknowledged"]
    assert none_in_state.json() == []


MAX_LATENCY_MS = 172_800_000  # 48 hours


@pytest.mark.parametrize("name", ["latency_ms", "latency_jitter_ms"])
def test_latency_settings_are_bounded_at_48_hours(name: str) -> None:
    assert getattr(SimulatorSettings.model_validate({name: MAX_LATENCY_MS}), name) == MAX_LATENCY_MS
    with pytest.raises(ValidationError):
        SimulatorSettings.model_validate({name: MAX_LATENCY_MS + 1})
    with pytest.raises(ValidationError):
        SimulatorSettings.model_validate({name: -1})


@pytest.mark.parametrize("name", ["latency_ms", "latency_jitter_ms"])
async def test_latency_config_is_bounded_at_48_hours(name: str) -> None:
    async with simulator() as client:
        too_slow = await client.put("/simulator/config", json={name: MAX_LATENCY_MS + 1})
        slowest = await client.put("/simulator/config", json={name: MAX_LATENCY_MS})

    assert too_slow.status_code == 400
    assert too_slow.json()["@type"] == "Error"
    assert name in too_slow.json()["message"]
    assert slowest.status_code == 200
    assert slowest.json()[name] == MAX_LATENCY_MS


async def test_a_48_hour_order_is_expected_in_48_hours_and_stays_acknowledged() -> None:
    async with simulator(latency_ms=MAX_LATENCY_MS) as client:
        created = (await client.post(ORDERS, json=order_body())).json()
        await asyncio.sleep(0.05)
        later = (await client.get(f"{ORDERS}/{created['id']}")).json()

    planned = when(created["expectedCompletionDate"]) - when(created["creationDate"])
    assert planned == timedelta(hours=48)
    assert later["state"] == "acknowledged"


async def test_jitter_adds_between_zero_and_the_jitter_to_each_order_s_latency() -> None:
    async with simulator(latency_ms=20, latency_jitter_ms=60, seed=5) as client:
        created = [(await client.post(ORDERS, json=order_body(f"ord-{n}"))).json() for n in range(30)]
        finals = [(await poll_until_terminal(client, order["id"]))[0] for order in created]

    planned = [when(o["expectedCompletionDate"]) - when(o["creationDate"]) for o in created]
    assert all(timedelta(milliseconds=20) <= p <= timedelta(milliseconds=80) for p in planned)
    # Spread over the range, not one value for all.
    assert max(planned) - min(planned) > timedelta(milliseconds=30)
    for order, final in zip(created, finals, strict=True):
        assert final["state"] == "completed"
        assert final["expectedCompletionDate"] == order["expectedCompletionDate"]
        assert when(final["completionDate"]) >= when(order["expectedCompletionDate"]) - timedelta(
            milliseconds=5
        )


async def test_without_jitter_every_order_takes_exactly_the_latency() -> None:
    async with simulator(latency_ms=50) as client:
        created = [(await client.post(ORDERS, json=order_body(f"ord-{n}"))).json() for n in range(5)]

    planned = {when(o["expectedCompletionDate"]) - when(o["creationDate"]) for o in created}
    assert planned == {timedelta(milliseconds=50)}


async def test_config_shows_and_changes_every_field() -> None:
    async with simulator() as client:
        initial = (await client.get("/simulator/config")).json()
        change = {
            "latency_ms": 1000,
            "latency_jitter_ms": 500,
            "failure_rate": 0.1,
            "unavailable_rate": 0.2,
            "notification_drop_rate": 0.3,
            "down": True,
        }
        changed = (await client.put("/simulator/config", json=change)).json()
        shown = (await client.get("/simulator/config")).json()

    assert initial == QUIET_CONFIG
    assert changed == shown == change


def test_new_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARRIER_SIM_DOWN", "true")
    monkeypatch.setenv("CARRIER_SIM_LATENCY_JITTER_MS", "250")
    monkeypatch.setenv("CARRIER_SIM_NOTIFICATION_DROP_RATE", "0.25")
    monkeypatch.setenv("CARRIER_SIM_NOTIFICATION_MAX_AGE_S", "60")
    monkeypatch.setenv("CARRIER_SIM_NOTIFICATION_RETRY_MAX_DELAY_S", "2")
    monkeypatch.setenv("CARRIER_SIM_NOTIFICATION_TIMEOUT_S", "1.5")
    monkeypatch.setenv("CARRIER_SIM_NOTIFY_ON_CREATE", "true")

    settings = SimulatorSettings()

    assert (settings.down, settings.latency_jitter_ms, settings.notification_drop_rate) == (True, 250, 0.25)
    assert (settings.notification_max_age_s, settings.notification_retry_max_delay_s) == (60, 2)
    assert settings.notification_timeout_s == 1.5
    assert settings.notify_on_create is True


def test_notification_defaults() -> None:
    settings = SimulatorSettings()

    assert settings.down is False
    assert settings.notify_on_create is False
    assert settings.notification_drop_rate == 0.0
    assert settings.notification_timeout_s == 5.0
    assert settings.notification_retry_initial_delay_s == 0.5
    assert settings.notification_retry_max_delay_s == 30.0
    assert settings.notification_max_age_s == 3600.0
    assert settings.state_file is None
