"""Event envelopes: round trip, validation, and the published JSON Schemas."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from mport_shared.events import (
    PAYLOAD_TYPES,
    OrderSubmitted,
    UnknownEventType,
    VerificationRequested,
    envelop,
    json_schemas,
    parse_envelope,
)
from mport_shared.tracing import continued, trace_id_of
from pydantic import ValidationError


def _submitted() -> OrderSubmitted:
    return OrderSubmitted(order_id=uuid.uuid4(), carrier_order_id="c-1", submitted_at=datetime.now(UTC))


def test_envelope_round_trips_with_cloudevents_attributes() -> None:
    envelope = envelop(_submitted(), source="/mport/test", correlation_id="order-1", subject="order-1")
    raw = json.loads(envelope.model_dump_json())
    assert raw["specversion"] == "1.0"
    assert raw["type"] == "mport.order.submitted.v1"
    assert {"id", "source", "time", "subject", "datacontenttype", "correlationid", "traceparent"} <= set(raw)
    assert parse_envelope(envelope.model_dump_json()) == envelope


def test_published_event_continues_the_current_trace() -> None:
    parent = "00-" + "a1" * 16 + "-" + "b2" * 8 + "-01"
    with continued(parent):
        envelope = envelop(_submitted(), source="/t", correlation_id="c")
    assert trace_id_of(envelope.traceparent) == trace_id_of(parent)
    # Outside any trace, an event starts one of its own.
    assert trace_id_of(envelop(_submitted(), source="/t", correlation_id="c").traceparent) not in (
        None,
        trace_id_of(parent),
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", ValueError),
        (b"[1, 2]", ValueError),
        (b'{"type": "mport.nothing.v1"}', UnknownEventType),
        (b'{"type": "mport.order.submitted.v1", "data": {}}', ValidationError),
    ],
)
def test_bad_bodies_are_refused(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_envelope(body)


def test_one_time_code_is_not_in_the_payload_repr() -> None:
    event = VerificationRequested(
        verification_id=uuid.uuid4(), company_id=uuid.uuid4(), employee_id=uuid.uuid4(), msisdn="4791234567",
        code="123456", expires_at=datetime.now(UTC),
    )  # fmt: skip
    assert "code=" not in repr(event)


def test_every_event_type_has_a_json_schema() -> None:
    schemas = json_schemas()
    assert set(schemas) == set(PAYLOAD_TYPES)
    assert all(schema["properties"]["data"] for schema in schemas.values())
