"""Prometheus metrics every service exposes at /metrics (deploy/prometheus/ alerts on them and
deploy/grafana/ charts them; tests/deploy checks that every metric those query is defined here or
in a service's own metrics module).

Labels are low-cardinality: a queue, an event type the consumer has a handler for (else `other`),
a route template, a status class; never an id."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Consuming (messaging.consumer): every delivery taken from a service's work queue, and what came of it.
MESSAGES_CONSUMED = Counter(
    "mport_messages_consumed_total",
    "Deliveries taken off a service's work queue (each attempt counts).",
    ["queue", "event_type"],
)
MESSAGES_FAILED = Counter(
    "mport_messages_failed_total",
    "Deliveries whose handling failed (then retried or dead-lettered).",
    ["queue", "event_type"],
)
MESSAGES_RETRIED = Counter(
    "mport_messages_retried_total",
    "Failed deliveries sent to a retry queue for another attempt later.",
    ["queue", "event_type"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "mport_messages_dead_lettered_total",
    "Messages sent to the service's dead-letter queue, by cause (invalid, permanent, retries_exhausted).",
    ["queue", "event_type", "cause"],
)
HANDLER_SECONDS = Histogram(
    "mport_handler_seconds",
    "Time spent handling one delivery, whatever its outcome.",
    ["queue", "event_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# Publishing (messaging.outbox): the relay's confirmed publishes and the rows still waiting.
MESSAGES_PUBLISHED = Counter(
    "mport_messages_published_total",
    "Events published from the outbox and confirmed by the broker.",
    ["service", "event_type"],
)
OUTBOX_FAILURES = Counter(
    "mport_outbox_publish_failures_total", "Outbox publish rounds that failed (retried).", ["service"]
)
OUTBOX_BACKLOG = Gauge("mport_outbox_backlog", "Outbox rows not yet published.", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "mport_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row.", ["service"]
)

# HTTP (http.HttpMetricsMiddleware), on every service's FastAPI app.
HTTP_REQUESTS = Counter(
    "mport_http_requests_total",
    "HTTP requests answered, by method, route template (`unmatched` when none) and status class.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "mport_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Readiness (http.check_readiness): what /readyz answers, also sampled every few seconds.
READY = Gauge(
    "mport_ready",
    "1 when the readiness check passes (database reachable, broker connected, consumer attached).",
    ["check"],
)
