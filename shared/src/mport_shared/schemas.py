"""Writes the event contract for other teams: one JSON Schema per event and an AsyncAPI document."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mport_shared.events import PAYLOAD_TYPES, json_schemas
from mport_shared.messaging.topology import EXCHANGE, EXTERNAL_QUEUES, SERVICE_QUEUES


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 description of the events exchange: each event type is a channel address."""
    schemas = json_schemas()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event_type, payload in PAYLOAD_TYPES.items():
        name = payload.__name__
        channels[name] = {
            "address": event_type,
            "description": (payload.__doc__ or name).strip().splitlines()[0],
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": {"name": EXCHANGE, "type": "topic",
                                                                    "durable": True, "vhost": "/"}}},
        }  # fmt: skip
        queues = (*SERVICE_QUEUES, *EXTERNAL_QUEUES)
        consumers = [q.name for q in queues if event_type in q.routing_keys]
        operations[f"receive{name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "description": f"Consumed by: {', '.join(consumers) or 'nobody yet'}",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "mPort self-service events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 (structured JSON) on one durable topic exchange; the routing "
            "key is the event type. Money is integer øre (NOK); times are UTC ISO-8601.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {
                payload.__name__: {"name": payload.__name__, "payload": schemas[event_type]}
                for event_type, payload in PAYLOAD_TYPES.items()
            }
        },
    }


def documents() -> dict[str, str]:
    """File name → content, for everything under docs/events/."""
    files = {
        f"{event_type}.schema.json": json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for event_type, schema in json_schemas().items()
    }
    files["asyncapi.json"] = json.dumps(asyncapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return files


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events")
    target.mkdir(parents=True, exist_ok=True)
    for name, content in documents().items():
        (target / name).write_text(content, encoding="utf-8")
    print(f"wrote {len(documents())} files to {target}")


if __name__ == "__main__":
    main()
