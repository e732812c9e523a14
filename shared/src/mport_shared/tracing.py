"""Tracing with OpenTelemetry: one trace per order, joined across services by the W3C `traceparent`
every event carries; exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, and off otherwise."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.telemetry import TelemetryConfig
    from starlette.types import ASGIApp, Receive, Scope, Send

    from mport_shared.events import Envelope, EventPayload
    from mport_shared.messaging.publisher import OutgoingMessage

TRACES_FILE_ENV = "MPORT_TRACES_FILE"
_TRACER = trace.get_tracer("mport_shared")
_TRACEPARENT = re.compile(r"^00-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})$")
# Operations endpoints are called every few seconds by probes and scrapers: no spans for them.
_UNTRACED_PATHS = "/healthz,/readyz,/metrics"
# For `FastAPI(telemetry=...)`: FastAPI's own OpenTelemetry (0.165+) switches itself on once a
# tracer provider is installed, and then wraps every request in a second span, metrics and
# log records. Ours are instrument_app's span, prometheus metrics and structlog; FastAPI's
# recorded nothing anyone reads (its cost per request was below the bench's noise).
FASTAPI_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


# ---- Set-up, once per process ------------------------------------------------------------------


def span_exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    """What the environment asks finished spans to be sent to: OTLP (http/protobuf, the standard
    OTEL_EXPORTER_OTLP_* variables) when an endpoint is set, a JSON-lines file when
    MPORT_TRACES_FILE is; nothing otherwise."""
    endpoint, path = span_exporters_wanted(environ)
    exporters: list[SpanExporter] = []
    if endpoint:
        # Imported only when used: the exporter pulls in protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Headers, timeout and compression it reads from OTEL_EXPORTER_OTLP_* itself.
        exporters.append(OTLPSpanExporter(endpoint=endpoint))
    if path:
        exporters.append(_jsonl_exporter(open(path, "a", encoding="utf-8")))  # noqa: SIM115 - lives as long as the process
    return exporters


def span_exporters_wanted(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The OTLP traces endpoint and the traces file the environment names, if any."""
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
        f"{base.rstrip('/')}/v1/traces" if base else None
    )
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        endpoint = None
    return endpoint, environ.get(TRACES_FILE_ENV) or None


def tracer_provider(*, service: str, environ: Mapping[str, str]) -> TracerProvider:
    """A provider named after the service (OTEL_SERVICE_NAME wins), with the exporters the
    environment asks for. With none, spans still get ids, so events carry a traceparent and log
    lines a trace id, but nothing is recorded and nothing leaves the process (the traceparents
    then say "not sampled", so a service after this one records nothing of the trace either)."""
    exporters = span_exporters(environ)
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: environ.get("OTEL_SERVICE_NAME") or service}),
        # With nowhere to send them, spans are not recorded at all: a span then costs its ids and
        # context, about half a recorded one (13-25 us against 30-60 us here, on a busy machine).
        # None: OTEL_TRACES_SAMPLER's choice, parent-based and always on by default.
        sampler=None if exporters else ALWAYS_OFF,
    )
    for exporter in exporters:
        if isinstance(exporter, ConsoleSpanExporter):
            # A span is on file as soon as it ends (for a developer, or a test, reading along).
            provider.add_span_processor(SimpleSpanProcessor(_RedactQueries(exporter)))
        else:
            provider.add_span_processor(BatchSpanProcessor(_RedactQueries(exporter)))
    return provider


def configure_tracing(*, service: str) -> TracerProvider:
    """Install this process's tracer provider (call once, at start, beside configure_logging)."""
    provider = tracer_provider(service=service, environ=os.environ)
    trace.set_tracer_provider(provider)
    return provider


def tracing_on(environ: Mapping[str, str]) -> bool:
    """Whether spans are exported (an OTLP endpoint or a traces file is set)."""
    return any(span_exporters_wanted(environ))


def instrument_app(app: FastAPI) -> None:
    """Every HTTP request in a span, continuing the caller's trace when the request carries a
    traceparent. With tracing on, OpenTelemetry's instrumentation records a server span named by
    the route template; off, a bare span gives the request's log lines and events their ids at a
    fraction of the instrumentation's cost (about 0.2 ms a request here, attributes and metrics
    it computes even for a span nobody records). Call it after the app's own middleware, so the
    span is outermost."""
    if not tracing_on(os.environ):
        app.add_middleware(_RequestTrace)
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        excluded_urls=os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", _UNTRACED_PATHS),
        # No spans for each ASGI message sent and received: noise, and a cost on every request.
        exclude_spans=["receive", "send"],
    )


class _RequestTrace:
    """A request's trace when nothing is recorded: the incoming traceparent's, or a new one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope.get("headers") or () if k == b"traceparent"), b"")
        span = _TRACER.start_span("http request", context=context_of(incoming.decode("latin-1")))
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
            span.end()


def _jsonl_exporter(out: IO[str]) -> ConsoleSpanExporter:
    return ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")


_QUERY_VALUE = re.compile(r"=[^&#]*")
_URL_KEYS = ("http.url", "url.full", "http.target", "url.query")


class _RedactQueries(SpanExporter):
    """Query strings never leave the process: they carry secrets here (Kannel's sendsms takes its
    password and the SMS text, the one-time code, as parameters; the dlr-url and the OIDC callback
    carry a token and a code). Keeps the parameter names, drops their values. At export, since
    the instrumentations set these attributes both when a span starts and after."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([_without_queries(span) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def _without_queries(span: ReadableSpan) -> ReadableSpan:
    attributes = span.attributes or {}
    if not any(key in attributes for key in _URL_KEYS):
        return span
    cleaned = dict(attributes)
    for key in _URL_KEYS:
        value = cleaned.get(key)
        if not isinstance(value, str):
            continue
        if key == "url.query":
            cleaned[key] = _QUERY_VALUE.sub("=[redacted]", value)
        elif "?" in value:
            head, _, query = value.partition("?")
            cleaned[key] = f"{head}?{_QUERY_VALUE.sub('=[redacted]', query)}"
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=cleaned,
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


# ---- traceparent <-> OpenTelemetry context -------------------------------------------------------


def traceparent_of(span: trace.Span) -> str | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_traceparent() -> str:
    """The current span as a traceparent, or a new trace when nothing is being traced."""
    return traceparent_of(trace.get_current_span()) or f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def trace_id_of(traceparent: str | None) -> str | None:
    match = _TRACEPARENT.match(traceparent or "")
    return match["trace"] if match else None


def context_of(traceparent: str | None) -> Context:
    """The context whose current span is the remote one `traceparent` names; an empty context
    (so a new trace starts, not the caller's) when it names none."""
    match = _TRACEPARENT.match(traceparent or "")
    if match is None:
        return Context()
    # What TraceContextTextMapPropagator.extract does, for the one header, at a third of its cost.
    remote = trace.SpanContext(
        trace_id=int(match["trace"], 16),
        span_id=int(match["span"], 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(match["flags"], 16)),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(remote), Context())


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Inside, the span `traceparent` names is the current one: what is done there joins its trace."""
    if trace_id_of(traceparent) is None:
        yield
        return
    token = otel_context.attach(context_of(traceparent))
    try:
        yield
    finally:
        otel_context.detach(token)


def _links_to_current(parent: Context) -> list[Link] | None:
    """A link to the span in hand when work joins another trace (a carrier notification
    completing an order placed an hour ago), so either trace leads to the other."""
    current = trace.get_current_span().get_span_context()
    remote = trace.get_current_span(parent).get_span_context()
    if current.is_valid and current.trace_id != remote.trace_id:
        return [Link(current)]
    return None


# ---- Messaging spans ----------------------------------------------------------------------------


@contextmanager
def outbox_write(
    envelopes: Sequence[Envelope[EventPayload]],
) -> Iterator[list[Envelope[EventPayload]]]:
    """A `create` span per event, in the trace the event was made in, for the outbox write; yields
    the events re-stamped with their span as traceparent, which the consumer's span continues."""
    spans: list[trace.Span] = []
    stamped: list[Envelope[EventPayload]] = []
    try:
        for envelope in envelopes:
            parent = context_of(envelope.traceparent)
            span = _TRACER.start_span(
                f"create {envelope.type}",
                context=parent,
                kind=SpanKind.PRODUCER,
                links=_links_to_current(parent),
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation.type": "create",
                    "messaging.message.id": envelope.id,
                    "messaging.message.conversation_id": envelope.correlationid,
                },
            )
            spans.append(span)
            traceparent = traceparent_of(span)
            stamped.append(
                envelope
                if traceparent in (None, envelope.traceparent)
                else envelope.model_copy(update={"traceparent": traceparent})
            )
        yield stamped
    finally:
        for span in spans:
            span.end()


@contextmanager
def publishing(
    messages: Sequence[OutgoingMessage], *, exchange: str
) -> Iterator[Callable[[Sequence[BaseException | None]], None]]:
    """A `publish` span per message, under the span that wrote it to the outbox; yields the
    function that ends them with each message's outcome (None, or the error)."""
    spans = [
        _TRACER.start_span(
            f"publish {message.routing_key}",
            context=context_of(_header(message.headers, "traceparent")),
            kind=SpanKind.CLIENT,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "send",
                "messaging.destination.name": exchange,
                "messaging.rabbitmq.destination.routing_key": message.routing_key,
                "messaging.message.id": message.message_id,
            },
        )
        for message in messages
    ]
    outcomes: list[Sequence[BaseException | None]] = []
    try:
        yield outcomes.append
    finally:
        results = outcomes[0] if outcomes else [None] * len(spans)
        for span, error in zip(spans, results, strict=False):
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()


def start_consuming(envelope: Envelope[EventPayload], *, queue: str, attempt: int) -> Callable[[], None]:
    """Start the consumer's `process` span, a child of the span that wrote the event (in whichever
    service that was), and make it current; returns the function that ends it."""
    span = _TRACER.start_span(
        f"process {envelope.type}",
        context=context_of(envelope.traceparent),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.destination.name": queue,
            "messaging.message.id": envelope.id,
            "messaging.message.conversation_id": envelope.correlationid,
            "mport.attempt": attempt,
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))

    def end() -> None:
        otel_context.detach(token)
        span.end()

    return end


async def handled(
    handler: Callable[[Envelope[EventPayload]], Awaitable[None]], envelope: Envelope[EventPayload]
) -> None:
    """Run a message handler in a span of its own. A failure is marked by its type only: an
    exception's text may quote a value of the message (a one-time code), and spans are not
    redacted as log lines are."""
    with _TRACER.start_as_current_span(
        f"handle {envelope.type}",
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            await handler(envelope)
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, bytes):
        value = value.decode(errors="ignore")
    return value if isinstance(value, str) else None
