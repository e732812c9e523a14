"""Every metric the services advertise (README, deploy/prometheus alerts, deploy/grafana) is on
their /metrics after real traffic, and has moved: an order placed and completed, a verification
code sent and delivered, and a message no handler can read, through the whole system."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterable

import aio_pika
import httpx
import pytest
from mport_shared.events import OrderCompleted
from mport_shared.messaging.connection import confirming_channel, connect
from mport_shared.messaging.topology import declare_exchange
from mport_shared.testing import MakeStack, order_body, wait_for
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

pytestmark = pytest.mark.e2e
# Where the services define their metrics (each module's import registers them).
METRICS_MODULES = ("mport_shared.metrics", "portal_api.metrics", "order_worker.metrics", "sms_worker.metrics")

# Per service: each family and a label subset one of its samples must carry with a value > 0
# (for a histogram, its _count). The shared ones are on every service with a queue.
SHARED = {
    "mport_messages_consumed_total": {},
    "mport_handler_seconds": {},
    "mport_messages_published_total": {},
    "mport_http_requests_total": {"route": "/metrics", "status": "2xx"},
    "mport_http_request_duration_seconds": {},
    "mport_ready": {"check": "consumer"},
}
# Gauges that are rightly 0 after the traffic: present, with the labels, whatever the value.
PRESENT = {
    "mport_outbox_backlog": {},
    "mport_outbox_oldest_age_seconds": {},
    "mport_orders_oldest_open_age_seconds": {"status": "received"},
    "mport_carrier_orders_past_deadline": {"phase": "submitted"},
}
ADVERTISED: dict[str, dict[str, dict[str, str]]] = {
    "portal-api": {
        **SHARED,
        "mport_orders": {"status": "completed"},
        "mport_verification_codes_total": {"outcome": "requested"},
        "mport_verification_deliveries_total": {"status": "delivered"},
        "mport_messages_failed_total": {"event_type": OrderCompleted.event_type},
        "mport_messages_dead_lettered_total": {"cause": "invalid"},
        "mport_outbox_backlog": {},
        "mport_outbox_oldest_age_seconds": {},
        "mport_orders_oldest_open_age_seconds": {"status": "received"},
    },
    "order-worker": {
        **SHARED,
        "mport_carrier_call_seconds": {"operation": "submit", "outcome": "ok"},
        "mport_carrier_orders": {"phase": "completed"},
        "mport_carrier_orders_past_deadline": {"phase": "submitted"},
        "mport_outbox_backlog": {},
        "mport_outbox_oldest_age_seconds": {},
    },
    "sms-worker": {
        **SHARED,
        "mport_sms_gateway_call_seconds": {"outcome": "sent"},
        "mport_sms_delivery_reports_total": {"outcome": "published"},
        "mport_outbox_backlog": {},
        "mport_outbox_oldest_age_seconds": {},
    },
    "payroll-worker": {
        **SHARED,
        "mport_messages_failed_total": {"event_type": OrderCompleted.event_type},
        "mport_messages_dead_lettered_total": {"cause": "invalid"},
        "mport_outbox_backlog": {},
        "mport_outbox_oldest_age_seconds": {},
    },
}
# Families this test cannot make move without breaking something on purpose, and the test that does.
MOVED_ELSEWHERE = {
    "mport_messages_retried_total": "shared/tests/test_metrics.py",
    "mport_outbox_publish_failures_total": "shared/tests/test_readiness.py (an unroutable event)",
    "mport_carrier_notifications_total": "services/order-worker/tests/test_provisioning.py",
    "mport_sms_not_sent_total": "services/sms-worker/tests/test_sending.py (a number abroad)",
    "mport_intake_held_total": "services/portal-api/tests/test_intake_gate.py (a worker behind)",
    "mport_intake_refused_total": "services/portal-api/tests/test_intake_gate.py (a worker behind)",
    "mport_intake_gate_closed": "services/portal-api/tests/test_intake_gate.py (a worker behind)",
}


def _samples(text: str) -> dict[str, list[Sample]]:
    families: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        families.setdefault(family.name, []).extend(family.samples)
    return families


def _moved(samples: Iterable[Sample], family: str, labels: dict[str, str]) -> bool:
    # A counter's sample is its family's name (ending in _total), a histogram's count <name>_count.
    return any(
        s.name in (family, f"{family}_count")
        and all(s.labels.get(k) == v for k, v in labels.items())
        and s.value > 0
        for s in samples
    )


def _family_name(name: str) -> str:
    # The parser names a counter's family without its _total.
    return name.removesuffix("_total")


async def test_every_advertised_metric_is_exposed_and_moves_after_real_traffic(
    make_stack: MakeStack, amqp_url: str
) -> None:
    interval = {"METRICS_INTERVAL_S": "0.2", "TABLE_METRICS_INTERVAL_S": "0.2"}
    stack = await make_stack(
        *ADVERTISED,
        "carrier-simulator",
        "sms-simulator",
        extra_env={name: dict(interval) for name in ADVERTISED},
    )
    async with httpx.AsyncClient(base_url=stack.url("portal-api"), timeout=10) as client:
        (await client.post("/auth/dev-login", data={"email": "kari.nordmann@demo.no"})).raise_for_status()
        csrf = client.cookies["csrftoken"]
        placed = await client.post(
            "/api/v1/orders",
            json=await order_body(client, "ekstra-data-1gb"),
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["id"]
        async with httpx.AsyncClient(base_url=stack.url("portal-api"), timeout=10) as hakon:
            # Håkon has not confirmed his number yet: a code goes to him by SMS.
            (await hakon.post("/auth/dev-login", data={"email": "hakon.hafell@demo.no"})).raise_for_status()
            asked = await hakon.post(
                "/api/v1/verifications", headers={"X-CSRF-Token": hakon.cookies["csrftoken"]}
            )
            assert asked.status_code == 202, asked.text
            verification_id = asked.json()["id"]

            async def done() -> bool:
                order = (await client.get(f"/api/v1/orders/{order_id}")).json()
                code = (await hakon.get(f"/api/v1/verifications/{verification_id}")).json()
                return order["status"] == "completed" and code["delivery_status"] == "delivered"

            await wait_for(done, timeout_s=30, what="the order to complete and the code to be delivered")

    # A message nobody can read, where the portal and the payroll-worker take completions.
    connection = await connect(amqp_url, name="test")
    try:
        exchange = await declare_exchange(await confirming_channel(connection))
        await exchange.publish(
            aio_pika.Message(b"not an event", type=OrderCompleted.event_type),
            routing_key=OrderCompleted.event_type,
        )
    finally:
        await connection.close()

    scraped: dict[str, dict[str, list[Sample]]] = {}

    async def all_moved() -> bool:
        async with httpx.AsyncClient(timeout=5) as scraper:
            for service in ADVERTISED:
                answer = await scraper.get(f"{stack.url(service)}/metrics")
                answer.raise_for_status()
                scraped[service] = _samples(answer.text)
        return not _missing(scraped)

    try:
        await wait_for(all_moved, timeout_s=20, interval_s=0.3, what="every advertised metric to move")
    except AssertionError:
        raise AssertionError(f"not exposed or never moved: {_missing(scraped)}") from None


def _missing(scraped: dict[str, dict[str, list[Sample]]]) -> dict[str, list[str]]:
    missing: dict[str, list[str]] = {}
    for service, expected in ADVERTISED.items():
        families = scraped.get(service, {})
        for family, labels in expected.items():
            samples = families.get(_family_name(family), [])
            ok = (
                any(all(s.labels.get(k) == v for k, v in labels.items()) for s in samples)
                if family in PRESENT
                else _moved(samples, family, labels)
            )
            if not ok:
                missing.setdefault(service, []).append(family)
    return missing


def test_every_metric_defined_in_code_is_checked_by_a_test() -> None:
    """A metric nothing checks is soon a metric nothing sets: each one is in ADVERTISED above or
    moved by the test named in MOVED_ELSEWHERE."""
    for module in (
        "mport_shared.metrics",
        "portal_api.metrics",
        "order_worker.metrics",
        "sms_worker.metrics",
    ):
        importlib.import_module(module)  # each defines its metrics in the default registry
    from prometheus_client import REGISTRY

    defined = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("mport_")
    }
    checked = {family for families in ADVERTISED.values() for family in families} | set(MOVED_ELSEWHERE)
    assert defined == checked
