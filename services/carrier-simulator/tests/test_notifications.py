"""Hubs and ProductOrderStateChangeEvent notifications, over real HTTP to a real listener."""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

import pytest
from carrier_simulator.notifications import listener_url
from mport_shared.testing import wait_for

from .conftest import HUBS, ORDERS, Carrier, Listener, RunCarrier, RunListener, until

LISTENER_PATH = "/listener/productOrderStateChangeEvent"
LIFE = ["acknowledged", "inProgress", "completed"]


async def hubs_until(carrier: Carrier, condition: Any, what: str) -> list[dict[str, Any]]:
    """The hubs' statistics once `condition(hubs)` holds."""
    hubs: list[dict[str, Any]] = []

    async def holds() -> bool:
        hubs[:] = await carrier.hubs()
        return bool(condition(hubs))

    await wait_for(holds, timeout_s=5.0, interval_s=0.005, what=what)
    return hubs


async def settled(carrier: Carrier) -> list[dict[str, Any]]:
    """The hubs' statistics once nothing is pending any more."""
    return await hubs_until(carrier, lambda hubs: all(hub["pending"] == 0 for hub in hubs), "nothing pending")


@pytest.mark.parametrize(
    ("callback", "expected"),
    [
        (
            "http://127.0.0.1:8091/?token=abc",
            "http://127.0.0.1:8091/listener/productOrderStateChangeEvent?token=abc",
        ),
        ("http://h/base", "http://h/base/listener/productOrderStateChangeEvent"),
        ("http://h/base/", "http://h/base/listener/productOrderStateChangeEvent"),
        ("https://h", "https://h/listener/productOrderStateChangeEvent"),
        (
            "https://h:8443/a%2Fb?x=1&y=%2F#top",
            "https://h:8443/a%2Fb/listener/productOrderStateChangeEvent?x=1&y=%2F",
        ),
    ],
)
def test_the_listener_path_goes_after_the_callback_path_and_keeps_its_query(
    callback: str, expected: str
) -> None:
    assert listener_url(callback) == expected


async def test_a_hub_hears_acknowledged_in_progress_and_completed_in_order(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    listener = Listener()
    async with run_listener(listener) as port, run_carrier(latency_ms=40) as carrier:
        created = await carrier.client.post(
            HUBS, json={"callback": f"http://127.0.0.1:{port}/base?token=abc"}
        )
        hub = created.json()
        order = await carrier.order("ord-1")
        await until(lambda: len(listener.received) == 3, "three notifications")
        final = await carrier.get(order["id"])
        [stats] = await carrier.hubs()

    assert created.status_code == 201
    assert created.headers["location"] == f"{HUBS}/{hub['id']}"
    assert hub == {
        "id": hub["id"],
        "href": f"{HUBS}/{hub['id']}",
        "callback": f"http://127.0.0.1:{port}/base?token=abc",
        "@type": "Hub",
    }
    assert [r.order["state"] for r in listener.received] == LIFE
    assert {(r.path, r.query) for r in listener.received} == {(f"/base{LISTENER_PATH}", "token=abc")}
    first, _, last = (r.body for r in listener.received)
    for body in (first, last):
        assert {k: v for k, v in body.items() if k not in ("eventId", "eventTime", "event")} == {
            "eventType": "ProductOrderStateChangeEvent",
            "@type": "ProductOrderStateChangeEvent",
            "@baseType": "Event",
            "correlationId": "ord-1",
            "domain": "productOrderingManagement",
            "title": "ProductOrderStateChangeEvent",
        }
        assert body["eventTime"].endswith("Z")
    assert len({r.body["eventId"] for r in listener.received}) == 3
    # The acknowledged event carries the order as the POST answered it, the last as GET shows it.
    assert first["event"]["productOrder"] == order
    assert last["event"]["productOrder"] == final
    assert last["eventTime"] == final["completionDate"]
    assert (stats["delivered"], stats["pending"], stats["dropped"], stats["expired"]) == (3, 0, 0, 0)


async def test_every_order_s_states_arrive_in_order_when_many_overlap(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    # A listener that answers after random pauses lets later requests overtake earlier ones,
    # unless the simulator keeps each order's notifications in sequence.
    rng = random.Random(7)
    listener = Listener(pause=lambda: rng.choice([0.0, 0.0, 0.001, 0.005]))
    async with (
        run_listener(listener) as port,
        run_carrier(latency_ms=2, latency_jitter_ms=30, notification_concurrency=4, seed=3) as carrier,
    ):
        await carrier.register(f"http://127.0.0.1:{port}/")
        orders = await asyncio.gather(*(carrier.order(f"ord-{n}") for n in range(30)))
        await until(lambda: len(listener.received) == 90, "three notifications per order")

    for order in orders:
        assert listener.states(order["id"]) == LIFE
    # Requests did overlap: the order in which the listener heard of orders is not the POST order.
    heard = [r.order["id"] for r in listener.received if r.order["state"] == "completed"]
    assert heard != [order["id"] for order in orders]


async def test_by_default_an_order_is_told_from_its_first_change_not_its_creation(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    listener = Listener()
    async with run_listener(listener) as port, run_carrier(notify_on_create=False, latency_ms=50) as carrier:
        await carrier.register(f"http://127.0.0.1:{port}")
        order = await carrier.order("ord-1")
        await until(lambda: len(listener.received) == 2, "two notifications")
        await asyncio.sleep(0.1)

    assert listener.states(order["id"]) == ["inProgress", "completed"]


async def test_a_zero_latency_order_is_done_in_the_answer_and_tells_no_hub(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    # Provisioned at once: the POST's answer has the outcome, and no state changed after it.
    listener = Listener()
    async with (
        run_listener(listener) as port,
        run_carrier(latency_ms=0, notify_on_create=False) as carrier,
    ):
        await carrier.register(f"http://127.0.0.1:{port}")
        ok = await carrier.order("ord-ok")
        bad = await carrier.order("ord-bad", offering="Surf-999GB")
        # A notification is counted (pending) as soon as its state change happens, before the
        # answer that made it: none counted now means none was made.
        [right_after] = await carrier.hubs()
        ok_now, bad_now = await carrier.get(ok["id"]), await carrier.get(bad["id"])
        # The hub does hear an order that then changes state.
        await carrier.client.put("/simulator/config", json={"latency_ms": 20})
        later = await carrier.order("ord-later")
        await until(lambda: len(listener.received) == 2, "the later order's two notifications")
        [stats] = await settled(carrier)

    assert ok["state"] == "completed"
    assert ok["productOrderItem"][0]["state"] == "completed"
    assert "completionDate" in ok
    assert "productOrderErrorMessage" not in ok
    assert bad["state"] == "failed"
    assert bad["productOrderItem"][0]["state"] == "failed"
    [error] = bad["productOrderErrorMessage"]
    assert error["reason"] == "Unknown product offering 'Surf-999GB'"
    assert (ok_now, bad_now) == (ok, bad)
    counters = ("delivered", "pending", "dropped", "expired", "failed_attempts")
    assert [right_after[name] for name in counters] == [0, 0, 0, 0, 0]
    assert {r.order["id"] for r in listener.received} == {later["id"]}
    assert listener.states(later["id"]) == ["inProgress", "completed"]
    assert (stats["delivered"], stats["pending"], stats["dropped"]) == (2, 0, 0)


async def test_a_zero_latency_order_is_told_once_in_its_final_state_when_creations_are_told(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    listener = Listener()
    async with (
        run_listener(listener) as port,
        run_carrier(latency_ms=0, notify_on_create=True) as carrier,
    ):
        await carrier.register(f"http://127.0.0.1:{port}")
        ok = await carrier.order("ord-ok")
        bad = await carrier.order("ord-bad", offering="Surf-999GB")
        await until(lambda: len(listener.received) == 2, "one notification per order")
        # Every notification is counted before the answer to its POST: this is all of them.
        [stats] = await settled(carrier)
        ok_now, bad_now = await carrier.get(ok["id"]), await carrier.get(bad["id"])

    assert (ok["state"], bad["state"]) == ("completed", "failed")
    assert listener.states(ok["id"]) == ["completed"]
    assert listener.states(bad["id"]) == ["failed"]
    heard = {r.order["id"]: r.body for r in listener.received}
    # The one event carries the order as the POST answered it and GET shows it.
    assert heard[ok["id"]]["event"]["productOrder"] == ok == ok_now
    assert heard[bad["id"]]["event"]["productOrder"] == bad == bad_now
    assert heard[ok["id"]]["eventTime"] == ok["completionDate"]
    assert bad["productOrderErrorMessage"][0]["reason"] == "Unknown product offering 'Surf-999GB'"
    assert {r.path for r in listener.received} == {LISTENER_PATH}
    assert (stats["delivered"], stats["pending"], stats["dropped"], stats["expired"]) == (2, 0, 0, 0)


async def test_a_listener_away_for_a_while_gets_every_notification_when_it_is_back(
    run_carrier: RunCarrier, run_listener: RunListener, refusing_socket: socket.socket
) -> None:
    sock = refusing_socket
    port = sock.getsockname()[1]
    listener = Listener()
    async with run_carrier(latency_ms=20) as carrier:
        await carrier.register(f"http://127.0.0.1:{port}/?token=abc")
        orders = [await carrier.order(f"ord-{n}") for n in range(5)]
        await asyncio.sleep(1.0)
        [away] = await carrier.hubs()
        async with run_listener(listener, sock):
            await until(lambda: len(listener.received) == 15, "all 15 notifications")
            [back] = await settled(carrier)

    assert away["delivered"] == 0
    assert away["pending"] == 15
    # Retried, more than once each, but with growing pauses (0.02 s doubling up to 0.1 s): in
    # one second, at most some 13 tries per order.
    assert 5 * 2 <= away["failed_attempts"] <= 5 * 15
    for order in orders:
        assert listener.states(order["id"]) == LIFE
    assert {r.query for r in listener.received} == {"token=abc"}
    assert (back["delivered"], back["pending"], back["expired"]) == (15, 0, 0)


async def test_a_listener_answering_errors_is_retried_until_it_accepts(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    listener = Listener(refuse_first=3)
    async with run_listener(listener) as port, run_carrier() as carrier:
        await carrier.register(f"http://127.0.0.1:{port}/")
        order = await carrier.order("ord-1")
        await until(lambda: len(listener.received) == 3, "all three notifications")
        [stats] = await carrier.hubs()

    assert listener.states(order["id"]) == LIFE
    assert listener.requests == 6
    assert (stats["delivered"], stats["failed_attempts"]) == (3, 3)


async def test_a_notification_the_listener_refuses_holds_back_no_other_order(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    # One request in flight at a time, so that a queue shared by all orders would show.
    refusing = True
    listener = Listener(refuse=lambda body: refusing and body["correlationId"] == "ord-stuck")
    async with run_listener(listener) as port, run_carrier(notification_concurrency=1) as carrier:
        await carrier.register(f"http://127.0.0.1:{port}/")
        stuck = await carrier.order("ord-stuck")
        free = [await carrier.order(f"ord-free-{n}") for n in range(3)]
        await until(lambda: len(listener.received) == 9, "the other orders' notifications")
        # The stuck order was placed first, so it has finished too: all three of its wait.
        [meanwhile] = await carrier.hubs()
        refusing = False
        await until(lambda: len(listener.received) == 12, "the refused order's notifications")

    assert {r.order["id"] for r in listener.received[:9]} == {order["id"] for order in free}
    for order in free:
        assert listener.states(order["id"]) == LIFE
    assert listener.states(stuck["id"]) == LIFE
    assert meanwhile["pending"] == 3
    assert meanwhile["failed_attempts"] >= 1


async def test_a_notification_is_given_up_after_the_maximum_age(
    run_carrier: RunCarrier, run_listener: RunListener, refusing_socket: socket.socket
) -> None:
    sock = refusing_socket
    port = sock.getsockname()[1]
    listener = Listener()
    async with run_carrier(notification_max_age_s=0.3) as carrier:
        await carrier.register(f"http://127.0.0.1:{port}/")
        await carrier.order("ord-1")
        [stats] = await settled(carrier)
        async with run_listener(listener, sock):
            await asyncio.sleep(0.3)

    assert (stats["delivered"], stats["expired"], stats["pending"]) == (0, 3, 0)
    assert stats["failed_attempts"] >= 2
    assert listener.received == []


async def test_a_hub_keeps_at_most_max_pending_and_pushes_out_the_oldest(
    run_carrier: RunCarrier, run_listener: RunListener, refusing_socket: socket.socket
) -> None:
    port = refusing_socket.getsockname()[1]
    listener = Listener()
    async with run_carrier(notification_max_pending=3) as carrier:
        await carrier.register(f"http://127.0.0.1:{port}/")
        orders = [await carrier.order(f"ord-{n}") for n in range(4)]
        # Four orders' three notifications each: 12, of which 3 are kept.
        [full] = await hubs_until(carrier, lambda hubs: hubs[0]["expired"] == 9, "nine pushed out")
        async with run_listener(listener, refusing_socket):
            [after] = await settled(carrier)

    assert full["pending"] == 3
    assert (after["delivered"], after["expired"], after["pending"]) == (3, 9, 0)
    # What was kept is newer than what was pushed out: the last state change of all, the last
    # order's completion, is among it, and each order's states still come in order.
    assert listener.states(orders[-1]["id"])[-1:] == ["completed"]
    for order in orders:
        states = listener.states(order["id"])
        assert states == sorted(states, key=LIFE.index)


async def test_deleting_a_hub_stops_its_deliveries(
    run_carrier: RunCarrier, run_listener: RunListener, refusing_socket: socket.socket
) -> None:
    sock = refusing_socket
    port = sock.getsockname()[1]
    listener = Listener()
    async with run_carrier() as carrier:
        gone = await carrier.register(f"http://127.0.0.1:{port}/gone")
        before = await carrier.order("ord-before")  # pending for `gone`, whose listener is away
        # All three of its notifications made (so none goes to the hub registered next), and tried.
        await hubs_until(
            carrier,
            lambda hubs: hubs[0]["pending"] == 3 and hubs[0]["failed_attempts"] >= 2,
            "ord-before finished and a failed try",
        )
        deleted = await carrier.client.delete(f"{HUBS}/{gone['id']}")
        again = await carrier.client.delete(f"{HUBS}/{gone['id']}")
        async with run_listener(listener, sock):
            await carrier.register(f"http://127.0.0.1:{port}/kept")
            after = await carrier.order("ord-after")
            await until(lambda: listener.count(f"/kept{LISTENER_PATH}") == 3, "the kept hub's three")
            await asyncio.sleep(0.25)  # longer than the longest retry pause
            hubs = await carrier.hubs()

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert again.status_code == 404
    assert again.json()["@type"] == "Error"
    assert again.json()["code"] == "NOT_FOUND"
    assert listener.count(f"/gone{LISTENER_PATH}") == 0
    assert listener.states(before["id"]) == []
    assert listener.states(after["id"]) == LIFE
    assert [hub["callback"] for hub in hubs] == [f"http://127.0.0.1:{port}/kept"]


async def test_drop_rate_one_sends_nothing_and_zero_sends_everything(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    listener = Listener()
    async with run_listener(listener) as port, run_carrier(notification_drop_rate=1.0) as carrier:
        await carrier.register(f"http://127.0.0.1:{port}/")
        for n in range(5):
            await carrier.order(f"lost-{n}")
        # Every state change of the five (three each) is made, and dropped, before the change.
        [dropped] = await hubs_until(carrier, lambda hubs: hubs[0]["dropped"] == 15, "fifteen dropped")
        await asyncio.sleep(0.05)
        await carrier.client.put("/simulator/config", json={"notification_drop_rate": 0.0})
        kept = [await carrier.order(f"kept-{n}") for n in range(5)]
        await until(lambda: len(listener.received) == 15, "fifteen notifications")
        await asyncio.sleep(0.05)
        [after] = await carrier.hubs()

    assert (dropped["dropped"], dropped["delivered"], dropped["pending"]) == (15, 0, 0)
    assert {r.order["id"] for r in listener.received} == {order["id"] for order in kept}
    for order in kept:
        assert listener.states(order["id"]) == LIFE
    assert (after["dropped"], after["delivered"]) == (15, 15)
    assert len(listener.received) == 15


async def test_some_notifications_are_lost_at_a_drop_rate_between(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    listener = Listener()
    async with run_listener(listener) as port, run_carrier(notification_drop_rate=0.5, seed=11) as carrier:
        await carrier.register(f"http://127.0.0.1:{port}/")
        await asyncio.gather(*(carrier.order(f"ord-{n}") for n in range(30)))
        # Not merely nothing pending: the orders' later states may be still to come.
        [stats] = await hubs_until(
            carrier,
            lambda hubs: hubs[0]["dropped"] + hubs[0]["delivered"] == 90,
            "every notification dropped or delivered",
        )

    assert (stats["pending"], stats["expired"]) == (0, 0)
    # Half of 90 on average; these bounds are more than four standard deviations out.
    assert 25 <= stats["delivered"] <= 65
    assert len(listener.received) == stats["delivered"]


async def test_a_down_carrier_refuses_every_tmf_route_and_sends_nothing_until_it_is_back(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    listener = Listener()
    async with run_listener(listener) as port, run_carrier(latency_ms=300) as carrier:
        client = carrier.client
        hub = await carrier.register(f"http://127.0.0.1:{port}/")
        order = await carrier.order("ord-1")
        await until(lambda: len(listener.received) == 1, "the acknowledged notification")

        down = await client.put("/simulator/config", json={"down": True})
        refused = [
            await client.post(ORDERS, json={"anything": 1}),
            await client.get(ORDERS),
            await client.get(f"{ORDERS}/{order['id']}"),
            await client.post(HUBS, json={"callback": "http://127.0.0.1:1/"}),
            await client.delete(f"{HUBS}/{hub['id']}"),
        ]
        health = await client.get("/healthz")
        await asyncio.sleep(0.4)  # the order finishes meanwhile; its news must wait
        heard_while_down = len(listener.received)
        [waiting] = await carrier.hubs()

        up = await client.put("/simulator/config", json={"down": False})
        await until(lambda: len(listener.received) == 3, "the waiting notifications")
        final = await carrier.get(order["id"])

    assert down.json()["down"] is True
    assert up.json()["down"] is False
    for response in refused:
        assert response.status_code == 503
        assert response.json()["@type"] == "Error"
        assert response.json()["code"] == "SERVICE_UNAVAILABLE"
        assert response.json()["reason"] == "Carrier is down (simulated)"
    assert health.status_code == 200
    assert heard_while_down == 1
    assert waiting["pending"] == 2
    assert listener.states(order["id"]) == LIFE
    assert final["state"] == "completed"


async def test_a_carrier_started_down_refuses_until_brought_up(run_carrier: RunCarrier) -> None:
    async with run_carrier(down=True) as carrier:
        refused = await carrier.client.post(HUBS, json={"callback": "http://127.0.0.1:1/"})
        config = (await carrier.client.get("/simulator/config")).json()
        await carrier.client.put("/simulator/config", json={"down": False})
        accepted = await carrier.client.post(HUBS, json={"callback": "http://127.0.0.1:1/"})

    assert refused.status_code == 503
    assert config["down"] is True
    assert accepted.status_code == 201


@pytest.mark.parametrize(
    "callback",
    ["ftp://example.com/", "/listener", "example.com/x", "http://", "http://h:port/", "http://a b/", ""],
)
async def test_a_callback_that_is_not_an_absolute_http_url_is_400(
    run_carrier: RunCarrier, callback: str
) -> None:
    async with run_carrier() as carrier:
        response = await carrier.client.post(HUBS, json={"callback": callback})
        hubs = await carrier.hubs()

    assert response.status_code == 400
    assert response.json()["@type"] == "Error"
    assert "callback" in response.json()["message"]
    assert hubs == []


async def test_a_hub_s_query_and_type_are_taken(run_carrier: RunCarrier) -> None:
    async with run_carrier() as carrier:
        response = await carrier.client.post(
            HUBS,
            json={
                "callback": "https://listener.example/",
                "query": "eventType=ProductOrderStateChangeEvent",
                "@type": "Hub",
            },
        )
        missing = await carrier.client.post(HUBS, json={"query": "x"})

    assert response.status_code == 201
    assert response.json()["query"] == "eventType=ProductOrderStateChangeEvent"
    assert missing.status_code == 400


async def test_two_hubs_each_get_every_notification(
    run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    listener = Listener()
    async with run_listener(listener) as port, run_carrier(latency_ms=10) as carrier:
        await carrier.register(f"http://127.0.0.1:{port}/a")
        await carrier.register(f"http://127.0.0.1:{port}/b")
        order = await carrier.order("ord-1")
        await until(lambda: len(listener.received) == 6, "three notifications for each hub")

    for path in ("/a", "/b"):
        assert listener.states(order["id"], path=path + LISTENER_PATH) == LIFE
    by_state: dict[str, set[str]] = {}
    for received in listener.received:
        by_state.setdefault(received.order["state"], set()).add(received.body["eventId"])
    # One event per state change, the same event (and id) to each hub.
    assert all(len(ids) == 1 for ids in by_state.values())
