"""One order is one trace: from the POST through every service's processes and back to the page.

Each service runs as its own process and writes its finished spans as JSON lines to a file of its
own (MPORT_TRACES_FILE), so the trace can only join up across the wire: through the traceparent
each event carries and the headers of the carrier's HTTP calls."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from mport_shared.testing import MakeStack, order_body, wait_for

pytestmark = pytest.mark.e2e

TRACED = ("portal-api", "order-worker", "payroll-worker")


def _spans(files: dict[str, Path]) -> list[dict[str, Any]]:
    spans = []
    for service, path in files.items():
        if path.exists():
            for line in path.read_text().splitlines():
                span = json.loads(line)
                assert span["resource"]["attributes"]["service.name"] == service
                spans.append({**span, "service": service})
    return spans


async def test_one_order_is_one_trace_across_every_service(make_stack: MakeStack, tmp_path: Path) -> None:
    files = {name: tmp_path / f"{name}.jsonl" for name in TRACED}
    stack = await make_stack(
        "carrier-simulator",
        "identity-simulator",
        "order-worker",
        "payroll-worker",
        "portal-api",
        extra_env={name: {"MPORT_TRACES_FILE": str(path)} for name, path in files.items()}
        | {"portal-api": {"PORTAL_MODE": "local", "MPORT_TRACES_FILE": str(files["portal-api"])}},
    )
    async with httpx.AsyncClient(base_url=stack.url("portal-api"), timeout=10) as client:
        (await client.post("/auth/dev-login", data={"email": "kari.nordmann@demo.no"})).raise_for_status()
        placed = await client.post(
            "/api/v1/orders",
            json=await order_body(client, "ekstra-data-15gb"),
            headers={"X-CSRF-Token": client.cookies["csrftoken"], "Idempotency-Key": str(uuid.uuid4())},
        )
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["id"]

        async def completed() -> bool:
            return bool((await client.get(f"/api/v1/orders/{order_id}")).json()["status"] == "completed")

        await wait_for(completed, timeout_s=30, what="the order to complete")

    [post] = [
        s
        for s in _spans(files)
        if s["name"] == "POST /api/v1/orders"
        and s["kind"] == "SpanKind.SERVER"
        and s["service"] == "portal-api"
    ]
    trace_id = post["context"]["trace_id"]

    def in_trace() -> list[dict[str, Any]]:
        return [s for s in _spans(files) if s["context"]["trace_id"] == trace_id]

    def named(name: str, service: str, spans: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        return [s for s in spans or in_trace() if s["name"] == name and s["service"] == service]

    async def payroll_and_portal_consumed() -> bool:
        return bool(
            named("process mport.order.completed.v1", "portal-api")
            and named("process mport.order.completed.v1", "payroll-worker")
        )

    await wait_for(payroll_and_portal_consumed, timeout_s=15, what="OrderCompleted consumed in the trace")
    spans = in_trace()

    def one(name: str, service: str) -> dict[str, Any]:
        [span] = named(name, service, spans)
        return span

    by_id = {s["context"]["span_id"]: s for s in spans}
    post = by_id[post["context"]["span_id"]]

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        assert span["parent_id"] in by_id, f"{span['name']} ({span['service']}) has no parent in the trace"
        return by_id[span["parent_id"]]

    def descends(span: dict[str, Any], ancestor: dict[str, Any]) -> bool:
        while span["parent_id"] is not None:
            span = parent(span)
            if span is ancestor:
                return True
        return False

    # portal-api: the POST writes OrderPlaced to the outbox; the relay publishes it.
    created = one("create mport.order.placed.v1", "portal-api")
    assert descends(created, post)
    published = one("publish mport.order.placed.v1", "portal-api")
    assert parent(published) is created
    # order-worker: its consume span's parent is the portal's outbox span, across the wire.
    consumed = one("process mport.order.placed.v1", "order-worker")
    assert parent(consumed) is created
    handled = one("handle mport.order.placed.v1", "order-worker")
    assert parent(handled) is consumed
    # The TMF622 calls to the carrier are client spans under the handler.
    carrier_calls = [s for s in spans if s["service"] == "order-worker" and "http.method" in s["attributes"]]
    assert [call["kind"] for call in carrier_calls if call["attributes"]["http.method"] == "POST"] == [
        "SpanKind.CLIENT"
    ]
    assert all(parent(call) is handled for call in carrier_calls)
    assert all("/productOrder" in call["attributes"]["http.url"] for call in carrier_calls)
    # The outcome, written by the order-worker, is consumed by the portal and the payroll-worker.
    completed_created = one("create mport.order.completed.v1", "order-worker")
    assert descends(completed_created, handled)
    for service in ("portal-api", "payroll-worker"):
        completion = one("process mport.order.completed.v1", service)
        assert parent(completion) is completed_created
        handler = one("handle mport.order.completed.v1", service)
        assert parent(handler) is completion
    # Every message span of this order, in whichever service, is in this one trace.
    of_order = [
        s for s in _spans(files) if s["attributes"].get("messaging.message.conversation_id") == order_id
    ]
    assert len(of_order) >= 5
    assert {s["context"]["trace_id"] for s in of_order} == {trace_id}
