"""The sms-worker's own Prometheus metrics: calls to the SMS gateway and its delivery reports
(never a number or a code as a label)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

GATEWAY_CALLS = Histogram(
    "mport_sms_gateway_call_seconds",
    "sendsms calls by outcome (sent, rejected, unavailable, unknown).",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
NOT_SENT = Counter(
    "mport_sms_not_sent_total",
    "Verifications whose SMS was never sent, by reason (not_allowed, expired, rejected).",
    ["reason"],
)
REPORTS = Counter(
    "mport_sms_delivery_reports_total",
    "Delivery reports, by what came of them (published, recorded, unknown, refused).",
    ["outcome"],
)
