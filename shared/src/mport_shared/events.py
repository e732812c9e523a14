"""The contract between services: versioned event payloads inside a CloudEvents 1.0 envelope."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mport_shared.tracing import current_traceparent

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


class Consent(BaseModel):
    """The employee's prior written agreement to a salary deduction (arbeidsmiljøloven § 14-15):
    who accepted what text, for what amount, when. Recorded by the portal when the employee
    pressed Ok in the confirm dialog; every deduction line refers to it by `consent_id`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    consent_id: uuid.UUID
    employee_id: uuid.UUID
    accepted_at: datetime
    amount_ore: Ore = Field(ge=0)
    billing: Billing
    text: str


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
    # add: a new service or SIM; modify: a plan change; delete: ending a monthly service.
    action: Literal["add", "modify", "delete"]
    details: dict[str, str] = Field(default_factory=dict)
    employee_charge: EmployeeCharge
    placed_at: datetime
    # For the payroll-worker, which never reads the portal's tables: the product's name as the
    # employee knows it ("Ekstra Data 15GB"), the company's wage type (lønnsart) for this kind of
    # order under its policy, and the consent to the deduction (None when the employee pays nothing).
    product_name: str = ""
    wage_type: str | None = None
    consent: Consent | None = None
    # Ending a service (action delete): the order that started it, whose monthly lines stop.
    ends_order_id: uuid.UUID | None = None


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


Period = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class DeductionLineKind(StrEnum):
    ONE_OFF = "one_off"  # a one-off product, once, in the period its order completed
    MONTHLY = "monthly"  # a monthly product or plan difference, each period while active
    REVERSAL = "reversal"  # undoes an earlier line (a correction or a mistaken charge)


class DeductionLine(BaseModel):
    """One salary deduction line, as the payroll system imports it. `line_id` is stable (the same
    order, kind and period always give the same id), so a re-import never charges twice."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    line_id: uuid.UUID
    company_id: uuid.UUID
    employee_id: uuid.UUID
    employee_number: str
    order_id: uuid.UUID
    product_code: str
    kind: DeductionLineKind
    wage_type: str
    # Deducted from the salary, in øre: positive for a deduction, negative for a reversal.
    amount_ore: int
    quantity: int = 1
    period: Period
    consent_id: uuid.UUID | None
    text: str  # as the employee recognises it: "Ekstra Data 15GB 01.12.2026"


class PayrollDeductionRecorded(EventPayload):
    event_type: ClassVar[str] = "mport.payroll.deduction_recorded.v1"
    line: DeductionLine
    recorded_at: datetime


class PayrollDeductionReversed(EventPayload):
    """`line` is the reversal line (kind reversal, the negated amount); `reverses_line_id` the line
    it undoes. Lines are never edited."""

    event_type: ClassVar[str] = "mport.payroll.deduction_reversed.v1"
    line: DeductionLine
    reverses_line_id: uuid.UUID
    reason: str
    reversed_at: datetime


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
        PayrollDeductionRecorded,
        PayrollDeductionReversed,
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
        traceparent=current_traceparent(),  # the outbox write makes its own span under it
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
