"""The contract between services: versioned event payloads inside a CloudEvents 1.0 envelope."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mport_shared.tracing import child_traceparent

Msisdn = Annotated[str, StringConstraints(pattern=r"^\d{8,15}$")]
Ore = Annotated[int, Field(description="Amount in øre (1/100 NOK)")]


class EventPayload(BaseModel):
    """Base of every payload; `event_type` is also the routing key on the topic exchange."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]


class OrderKind(StrEnum):
    ADDON = "addon"
    PLAN = "plan"
    SIM_ORDER = "sim_order"
    SIM_ACTIVATION = "sim_activation"


class Billing(StrEnum):
    ONE_OFF = "one_off"
    MONTHLY = "monthly"


class EmployeeCharge(BaseModel):
    """What the employee pays for this order under the company's policy at the time of ordering."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    amount_ore: Ore = Field(ge=0)
    billing: Billing
    currency: Literal["NOK"] = "NOK"


class OrderSnapshot(BaseModel):
    """The order as it was placed; carried by every order event so consumers need no look-ups."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    order_id: uuid.UUID
    company_id: uuid.UUID
    employee_id: uuid.UUID
    employee_number: str
    msisdn: Msisdn
    product_code: str
    carrier_product_code: str
    kind: OrderKind
    action: Literal["add", "modify"]
    details: dict[str, str] = Field(default_factory=dict)
    employee_charge: EmployeeCharge
    placed_at: datetime


class OrderPlaced(EventPayload):
    event_type: ClassVar[str] = "mport.order.placed.v1"
    order: OrderSnapshot


class OrderSubmitted(EventPayload):
    """The carrier has accepted the order and is working on it."""

    event_type: ClassVar[str] = "mport.order.submitted.v1"
    order_id: uuid.UUID
    carrier_order_id: str
    submitted_at: datetime
    # The carrier's own state (TMF622 ProductOrderStateType) and when it expects to be done.
    carrier_state: str | None = None
    expected_completion_at: datetime | None = None


class OrderProgressed(EventPayload):
    """The carrier order moved on without finishing: a new carrier state or expected completion date."""

    event_type: ClassVar[str] = "mport.order.progressed.v1"
    order_id: uuid.UUID
    carrier_order_id: str
    carrier_state: str
    expected_completion_at: datetime | None = None
    progressed_at: datetime


class OrderCompleted(EventPayload):
    event_type: ClassVar[str] = "mport.order.completed.v1"
    order: OrderSnapshot
    carrier_order_id: str
    completed_at: datetime


class OrderFailureCode(StrEnum):
    """Why an order failed, for clients to switch on (the reason is text for people)."""

    CARRIER_REJECTED = "carrier_rejected"  # the carrier refused or failed the order
    CARRIER_DEADLINE_PASSED = "carrier_deadline_passed"  # with the carrier, but not done in time
    CARRIER_UNREACHABLE = "carrier_unreachable"  # the carrier never took the order in time


class OrderFailed(EventPayload):
    """The order ended without being provisioned. Nothing is charged: `order.employee_charge` is
    zero here, whatever the order would have cost."""

    event_type: ClassVar[str] = "mport.order.failed.v1"
    order: OrderSnapshot
    carrier_order_id: str | None
    reason: str
    reason_code: OrderFailureCode = OrderFailureCode.CARRIER_REJECTED
    failed_at: datetime


class VerificationRequested(EventPayload):
    """Carries a one-time code: the message expires with the code and is never logged.

    The code goes only to `msisdn`, the number the administrator registered; the sms-worker
    writes the text of the SMS."""

    event_type: ClassVar[str] = "mport.verification.requested.v1"
    verification_id: uuid.UUID
    company_id: uuid.UUID
    employee_id: uuid.UUID
    msisdn: Msisdn
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")] = Field(repr=False)
    expires_at: datetime


class VerificationCodeSent(EventPayload):
    """The SMS gateway accepted the SMS for delivery (or queued it for later)."""

    event_type: ClassVar[str] = "mport.verification.code_sent.v1"
    verification_id: uuid.UUID
    gateway_message_id: str
    sent_at: datetime


class VerificationDelivered(EventPayload):
    """The gateway reported the SMS delivered to the phone."""

    event_type: ClassVar[str] = "mport.verification.delivered.v1"
    verification_id: uuid.UUID
    delivered_at: datetime


class VerificationFailureCode(StrEnum):
    """Why an SMS did not reach the phone, for clients to switch on (the reason is text for people)."""

    REJECTED = "rejected"  # the gateway refused it for good (not routable, authorization)
    UNDELIVERED = "undelivered"  # the gateway or the SMSC reported it not delivered
    EXPIRED = "expired"  # the gateway stayed away until the code had expired
    NOT_ALLOWED = "not_allowed"  # the number's country is not one we send to


class VerificationDeliveryFailed(EventPayload):
    event_type: ClassVar[str] = "mport.verification.delivery_failed.v1"
    verification_id: uuid.UUID
    reason: str
    reason_code: VerificationFailureCode = VerificationFailureCode.UNDELIVERED
    failed_at: datetime


PAYLOAD_TYPES: dict[str, type[EventPayload]] = {
    cls.event_type: cls
    for cls in (
        OrderPlaced,
        OrderSubmitted,
        OrderProgressed,
        OrderCompleted,
        OrderFailed,
        VerificationRequested,
        VerificationCodeSent,
        VerificationDelivered,
        VerificationDeliveryFailed,
    )
}

P = TypeVar("P", bound=EventPayload)


class Envelope(BaseModel, Generic[P]):
    """CloudEvents 1.0 structured-mode envelope, plus the `correlationid` and `traceparent` extensions."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str
    traceparent: str
    data: P


CONTENT_TYPE = "application/cloudevents+json"


def envelop(payload: P, *, source: str, correlation_id: str, subject: str | None = None) -> Envelope[P]:
    """Wrap a payload for publishing, in the trace currently being handled."""
    return Envelope[P](
        id=str(uuid.uuid4()),
        source=source,
        type=payload.event_type,
        time=datetime.now(UTC),
        subject=subject,
        correlationid=correlation_id,
        traceparent=child_traceparent(),
        data=payload,
    )


class UnknownEventType(ValueError):
    pass


def parse_envelope(body: bytes | str) -> Envelope[EventPayload]:
    """Decode and validate a message body; raises ValueError (incl. ValidationError) if it is bad."""
    raw: Any = json.loads(body)
    if not isinstance(raw, dict):
        raise ValueError("event body is not a JSON object")
    payload_type = PAYLOAD_TYPES.get(str(raw.get("type")))
    if payload_type is None:
        raise UnknownEventType(f"unknown event type {raw.get('type')!r}")
    envelope: Envelope[EventPayload] = Envelope[payload_type].model_validate(raw)  # type: ignore[valid-type]
    return envelope


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each event's envelope, keyed by event type, for the payroll team and docs."""
    return {
        event_type: Envelope[cls].model_json_schema()  # type: ignore[valid-type]
        for event_type, cls in PAYLOAD_TYPES.items()
    }
