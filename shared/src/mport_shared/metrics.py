"""Prometheus metrics every service exposes at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_HANDLED = Counter(
    "mport_messages_handled_total",
    "Messages taken off a queue, by outcome (ok, duplicate, retried, dead_lettered).",
    ["queue", "event_type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "mport_handler_seconds",
    "Time spent handling one message.",
    ["queue", "event_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_PUBLISHED = Counter("mport_outbox_published_total", "Outbox rows published.", ["service"])
OUTBOX_FAILURES = Counter(
    "mport_outbox_publish_failures_total", "Outbox publish attempts that failed.", ["service"]
)
OUTBOX_BACKLOG = Gauge("mport_outbox_backlog", "Outbox rows not yet published.", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "mport_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row.", ["service"]
)
