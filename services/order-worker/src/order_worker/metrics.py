"""The order-worker's own Prometheus metrics: carrier calls and carrier notifications."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from order_worker.domain import Observation, Rejected, Seen, Unavailable

CARRIER_CALLS = Histogram(
    "mport_carrier_call_seconds",
    "Calls to the carrier by operation and outcome (ok, rejected, unavailable, unknown).",
    ["operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
NOTIFICATIONS = Counter(
    "mport_carrier_notifications_total",
    "Carrier state-change notifications, by what came of them (confirmed, no_change, finished, "
    "unknown, unconfirmed, mismatched, contradicted, refused).",
    ["outcome"],
)


def observe_call(operation: str, seen: Observation, seconds: float) -> None:
    match seen:
        case Seen():
            outcome = "ok"
        case Rejected():
            outcome = "rejected"
        case Unavailable():
            outcome = "unavailable"
        case _:
            outcome = "unknown"
    CARRIER_CALLS.labels(operation, outcome).observe(seconds)
