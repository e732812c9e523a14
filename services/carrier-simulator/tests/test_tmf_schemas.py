"""What the simulator sends validates against TM Forum's TMF622 v5.0.0 OpenAPI schemas.

`tmf622_schemas.json` holds the schemas these payloads touch, copied (descriptions left out) from
the published TMF622 v5.0.0 OpenAPI document's `components.schemas`. No JSON Schema library is
installed in the workspace, so `SchemaValidator` below covers the keywords those schemas use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import HUBS, ORDERS, Carrier, Listener, RunCarrier, RunListener, order_body, until

FIXTURE = Path(__file__).with_name("tmf622_schemas.json")

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


class SchemaValidator:
    """Validates instances against `#/components/schemas/<name>` of an OpenAPI 3.0 document.

    Covers $ref, allOf, oneOf (an @type discriminator picks the branch), type, properties,
    required, items, minItems, enum and format date-time. Properties a schema does not name are
    allowed, as TMF schemas are extensible.
    """

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self._schemas = schemas
        self.used: set[str] = set()  # what a fixture needs to copy

    def errors(self, instance: Any, name: str) -> list[str]:
        problems: list[str] = []
        self._check(instance, {"$ref": f"#/components/schemas/{name}"}, "$", problems, frozenset())
        return problems

    def _check(
        self, value: Any, schema: Mapping[str, Any], at: str, problems: list[str], active: frozenset[Any]
    ) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in self._schemas:
                raise KeyError(f"schema {name!r} is not in {FIXTURE.name}; copy it from the TMF622 document")
            self.used.add(name)
            key = (id(value), name)
            if key not in active:  # a subtype's allOf leads back to its base: checked already
                self._check(value, self._schemas[name], at, problems, active | {key})
            return
        for part in schema.get("allOf", ()):
            self._check(value, part, at, problems, active)
        chosen = self._discriminated(value, schema)
        if chosen is not None:
            self._check(value, {"$ref": chosen}, at, problems, active)
        elif "oneOf" in schema:
            fits = [option for option in schema["oneOf"] if not self._quiet(value, option, at, active)]
            if len(fits) != 1:
                problems.append(f"{at}: fits {len(fits)} of the oneOf schemas, not exactly 1")
        kind = schema.get("type")
        if kind is not None and not _TYPES[kind](value):
            problems.append(f"{at}: {value!r} is not of type {kind}")
            return
        if "enum" in schema and value not in schema["enum"]:
            problems.append(f"{at}: {value!r} is not one of {schema['enum']}")
        if schema.get("format") == "date-time" and isinstance(value, str):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                problems.append(f"{at}: {value!r} is not a date-time")
        if isinstance(value, dict):
            problems.extend(
                f"{at}: {key!r} is required" for key in schema.get("required", ()) if key not in value
            )
            for key, sub in schema.get("properties", {}).items():
                if key in value:
                    self._check(value[key], sub, f"{at}.{key}", problems, active)
        if isinstance(value, list):
            if len(value) < schema.get("minItems", 0):
                problems.append(f"{at}: fewer than {schema['minItems']} items")
            for index, item in enumerate(value):
                if "items" in schema:
                    self._check(item, schema["items"], f"{at}[{index}]", problems, active)

    @staticmethod
    def _discriminated(value: Any, schema: Mapping[str, Any]) -> str | None:
        discriminator = schema.get("discriminator")
        if discriminator is None or not isinstance(value, dict):
            return None
        chosen = discriminator.get("mapping", {}).get(value.get(discriminator["propertyName"]))
        return chosen if isinstance(chosen, str) else None

    def _quiet(self, value: Any, schema: Mapping[str, Any], at: str, active: frozenset[Any]) -> list[str]:
        problems: list[str] = []
        self._check(value, schema, at, problems, active)
        return problems


@pytest.fixture(scope="module")
def tmf622() -> SchemaValidator:
    return SchemaValidator(json.loads(FIXTURE.read_text(encoding="utf-8"))["schemas"])


def by_ref_item() -> dict[str, Any]:
    """An order whose item names an existing product by reference (ProductRef)."""
    body = order_body("ord-ref", "SIM-Aktiver")
    [item] = body["productOrderItem"]
    item.update(action="modify", product={"id": "sub-4791234567", "@type": "ProductRef"})
    return body


async def capture(carrier: Carrier, listener: Listener, port: int) -> dict[str, Any]:
    """One of each payload the simulator produces for hubs and notifications."""
    hub_request = {"callback": f"http://127.0.0.1:{port}/?token=abc", "query": "eventType=x", "@type": "Hub"}
    hub = (await carrier.client.post(HUBS, json=hub_request)).json()
    await carrier.client.put("/simulator/config", json={"latency_ms": 20})
    await carrier.order("ord-ok")
    await carrier.order("ord-bad", offering="Surf-999GB")
    by_ref = await carrier.client.post(ORDERS, json=by_ref_item())
    assert by_ref.status_code == 201
    await until(lambda: len(listener.received) == 9, "three notifications for each of three orders")
    return {
        "hub_request": hub_request,
        "hub": hub,
        "events": [r.body for r in listener.received],
        "errors": [
            (await carrier.client.post(HUBS, json={"callback": "ftp://x/"})).json(),
            (await carrier.client.delete(f"{HUBS}/nope")).json(),
        ],
    }


async def test_notifications_hubs_and_errors_validate_against_the_tmf622_schemas(
    tmf622: SchemaValidator, run_carrier: RunCarrier, run_listener: RunListener
) -> None:
    listener = Listener()
    async with run_listener(listener) as port, run_carrier() as carrier:
        sent = await capture(carrier, listener, port)

    states = {event["event"]["productOrder"]["state"] for event in sent["events"]}
    assert states == {"acknowledged", "inProgress", "completed", "failed"}
    for event in sent["events"]:
        assert tmf622.errors(event, "ProductOrderStateChangeEvent") == []
        # The Event schema leaves `event` an open object; its content is the ProductOrder.
        assert tmf622.errors(event["event"], "ProductOrderStateChangeEventPayload") == []
    assert tmf622.errors(sent["hub_request"], "Hub_FVO") == []
    assert tmf622.errors(sent["hub"], "Hub") == []
    for error in sent["errors"]:
        assert tmf622.errors(error, "Error") == []
    # Every schema in the fixture was needed by some payload: it holds no more than that.
    assert tmf622.used == set(json.loads(FIXTURE.read_text(encoding="utf-8"))["schemas"])


def test_the_validator_finds_what_breaks_a_schema(tmf622: SchemaValidator) -> None:
    event = {
        "eventId": "1",
        "eventTime": "yesterday",
        "eventType": "ProductOrderStateChangeEvent",
        "@type": "ProductOrderStateChangeEvent",
        "event": {
            "productOrder": {
                "id": "o",
                "@type": "ProductOrder",
                "state": "done",
                "productOrderItem": [
                    {
                        "id": "1",
                        "action": "add",
                        "state": "completed",
                        "@type": "ProductOrderItem",
                        "product": {
                            "@type": "Product",
                            "productCharacteristic": [
                                {"name": "n", "value": 5, "@type": "StringCharacteristic"}
                            ],
                        },
                    }
                ],
            }
        },
    }

    assert tmf622.errors(event, "ProductOrderStateChangeEvent") == [
        "$.eventTime: 'yesterday' is not a date-time"
    ]
    problems = tmf622.errors(event["event"], "ProductOrderStateChangeEventPayload")
    assert any(p.startswith("$.productOrder.state: 'done' is not one of") for p in problems), problems
    assert any("productCharacteristic[0].value: 5 is not of type string" in p for p in problems), problems
    assert tmf622.errors({"@type": "Hub", "id": "h"}, "Hub") == ["$: 'callback' is required"]
    assert tmf622.errors({"callback": "http://x/"}, "Hub_FVO") == ["$: '@type' is required"]
    assert tmf622.errors({"@type": "Error", "code": "X"}, "Error") == ["$: 'reason' is required"]
