"""Tracing set-up: exported over OTLP only when asked, off otherwise; secrets in URLs never exported;
log lines carry the ids of the span in hand."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
import structlog
from fastapi import FastAPI
from mport_shared.logging import add_trace_context
from mport_shared.tracing import (
    current_traceparent,
    instrument_app,
    span_exporters,
    trace_id_of,
    tracer_provider,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """An OTLP/HTTP collector on a loopback port: what it was sent, by path."""
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_without_an_otlp_endpoint_no_exporter_is_installed(
    collector: tuple[str, list[tuple[str, bytes]]],
) -> None:
    _, received = collector
    assert span_exporters({}) == []
    assert span_exporters({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}) == []
    provider = tracer_provider(service="order-worker", environ={})
    with provider.get_tracer("t").start_as_current_span("work") as span:
        assert span.get_span_context().is_valid  # ids still made: events carry a traceparent
    assert provider.force_flush()
    provider.shutdown()
    assert received == []


def test_with_an_otlp_endpoint_spans_are_exported_named_after_the_service(
    collector: tuple[str, list[tuple[str, bytes]]],
) -> None:
    url, received = collector
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": url}
    [exporter] = span_exporters(environ)
    assert isinstance(exporter, OTLPSpanExporter)
    assert span_exporters({**environ, "OTEL_TRACES_EXPORTER": "none"}) == []
    provider = tracer_provider(service="order-worker", environ=environ)
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    assert provider.force_flush()
    provider.shutdown()
    [(path, body)] = received
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attributes["service.name"] == "order-worker"
    assert [s.name for s in resource_spans.scope_spans[0].spans] == ["work"]


async def test_query_strings_never_reach_an_exported_span(tmp_path: Path) -> None:
    """Kannel's sendsms takes its password and the SMS text (the code) as query parameters; a
    delivery report and the OIDC callback bring a token and a code in theirs."""
    spans_file = tmp_path / "spans.jsonl"
    provider = tracer_provider(service="sms-worker", environ={"MPORT_TRACES_FILE": str(spans_file)})
    app = FastAPI()

    @app.get("/dlr")
    async def dlr() -> dict[str, str]:
        return {}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sms-worker"
    ) as client:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
        await client.get("/dlr", params={"token": "dlr-secret-token", "type": "1"})
        await client.get("/cgi-bin/sendsms", params={"password": "kannel-pass", "text": "Kode: 493817"})
    provider.shutdown()
    exported = spans_file.read_text()
    assert exported.count("\n") >= 3  # two client spans and the server span, at least
    for secret in ("dlr-secret-token", "kannel-pass", "493817"):
        assert secret not in exported
    urls = [json.loads(line)["attributes"].get("http.url") for line in exported.splitlines()]
    assert "http://sms-worker/cgi-bin/sendsms?password=[redacted]&text=[redacted]" in urls


def test_log_lines_carry_the_trace_and_span_of_the_work_in_hand() -> None:
    provider = tracer_provider(service="portal-api", environ={})
    with provider.get_tracer("t").start_as_current_span("work") as span:
        ctx = span.get_span_context()
        line = add_trace_context(None, "info", {"event": "hello"})
    assert line == {"event": "hello", "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
    assert add_trace_context(None, "info", {"event": "outside"}) == {"event": "outside"}
    assert structlog.contextvars.get_contextvars().get("trace_id") is None


async def test_with_tracing_off_a_request_still_carries_its_callers_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No server span is recorded, but the request's log lines and events carry the trace id."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "MPORT_TRACES_FILE"):
        monkeypatch.delenv(name, raising=False)
    app = FastAPI()

    @app.get("/seen")
    async def seen() -> dict[str, object]:
        return {"log": dict(add_trace_context(None, "info", {})), "event": current_traceparent()}

    instrument_app(app)
    assert not any(m.cls.__module__.startswith("opentelemetry") for m in app.user_middleware)
    incoming = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = (await client.get("/seen", headers={"traceparent": incoming})).json()
    assert answer["log"]["trace_id"] == "ab" * 16
    assert trace_id_of(answer["event"]) == "ab" * 16
