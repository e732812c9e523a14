"""RabbitMQ's management API, as `mport-ops` uses it: queue figures, and the delivery-limit policies."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from mport_shared.messaging.connection import broker_addresses
from mport_shared.messaging.topology import DELIVERY_LIMIT, delivery_limit_policies


def vhost_and_auth(amqp_url: str) -> tuple[str, tuple[str, str]]:
    """The vhost and credentials in an AMQP URL (the first address, if it lists several)."""
    first = broker_addresses(amqp_url)[0]  # every spelling of a node list shares one vhost
    vhost = first.path[1:] if first.path not in ("", "/") else "/"
    return vhost, (first.user or "guest", first.password or "guest")


def queue_figures(api_url: str, amqp_url: str) -> list[dict[str, Any]]:
    """Each queue of the vhost: ready, unacked, consumers, publish and deliver rates (msg/s)."""
    vhost, auth = vhost_and_auth(amqp_url)
    response = httpx.get(f"{api_url.rstrip('/')}/queues/{quote(vhost, safe='')}", auth=auth, timeout=10)
    response.raise_for_status()
    rows = []
    for q in response.json():
        stats = q.get("message_stats") or {}
        rows.append(
            {
                "queue": q["name"],
                "type": q.get("type", "classic"),
                "ready": q.get("messages_ready", q.get("messages", 0)) or 0,
                "unacked": q.get("messages_unacknowledged", 0) or 0,
                "consumers": q.get("consumers", 0) or 0,
                "publish_rate": float((stats.get("publish_details") or {}).get("rate", 0.0)),
                "deliver_rate": float((stats.get("deliver_get_details") or {}).get("rate", 0.0)),
            }
        )
    return sorted(rows, key=lambda r: r["queue"])


def put_delivery_limit_policies(
    api_url: str, *, vhost: str, auth: tuple[str, str], delivery_limit: int = DELIVERY_LIMIT
) -> None:
    """Set the work queues' delivery-limit policies on a vhost (what the definitions hold)."""
    with httpx.Client(auth=auth, timeout=10) as api:
        for policy in delivery_limit_policies(vhost=vhost, delivery_limit=delivery_limit):
            body = {k: policy[k] for k in ("pattern", "apply-to", "priority", "definition")}
            api.put(
                f"{api_url.rstrip('/')}/policies/{quote(vhost, safe='')}/{quote(policy['name'], safe='')}",
                json=body,
            ).raise_for_status()
