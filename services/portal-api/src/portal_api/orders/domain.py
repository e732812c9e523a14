"""Order rules that need no I/O: statuses, what may be ordered (check_order) and what holds a place,
SIM ICC validation, cleaning and fingerprints of requests, and how status events move an order."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, assert_never

from mport_shared.events import (
    Billing,
    EmployeeCharge,
    OrderCompleted,
    OrderFailed,
    OrderKind,
    OrderProgressed,
    OrderSubmitted,
)

from portal_api.catalog.policy import PolicyDocument, decide
from portal_api.catalog.products import Catalog, Product
from portal_api.errors import DomainError, ErrorCode

if TYPE_CHECKING:
    from portal_api.models import Employee, Order


class OrderStatus(StrEnum):
    RECEIVED = "received"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"


# Status only moves forward: received → submitted → completed or failed (StatusChange below).
OPEN_STATUSES = (OrderStatus.RECEIVED.value, OrderStatus.SUBMITTED.value)


# [0-9], not \d: Python's \d (and int()) also take fullwidth, Arabic-Indic and other digits.
_ICC = re.compile(r"[0-9]{19,20}")
_ASCII_DIGITS = frozenset("0123456789")

# Unicode categories no one-line text field takes: controls, format characters (bidi controls,
# zero-width characters, the BOM, soft hyphen ...), lone surrogates (a JSON "\ud800" parses to
# one, and encoding it for the database or the outbox fails), private use and unassigned.
_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (such as a bidi control or a zero-width character)",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
}
# Controls that are whitespace a person types or pastes (the address is a <textarea>): they are
# collapsed into one space with the rest, as before, rather than refused.
_TYPED_WHITESPACE = frozenset("\t\n\r")


def text_problem(text: str) -> str | None:
    """Why a one-line text may not be taken as it is, naming its first refused character, or None."""
    for position, ch in enumerate(text, start=1):
        if ch in _TYPED_WHITESPACE:
            continue
        kind = _REFUSED_CATEGORIES.get(unicodedata.category(ch))
        if kind is not None:
            return f"character {position} is U+{ord(ch):04X}, {kind}, which is not allowed"
    return None


def details_problem(details: Mapping[object, object]) -> str | None:
    """Why order details (names and text values) may not be taken, naming the detail, or None."""
    for name, value in details.items():
        if isinstance(name, str) and (problem := text_problem(name)):
            # repr() escapes every refused character, so the answer itself can always be encoded.
            return f"The order detail name {name!r} is not valid: {problem}."
        if isinstance(name, str) and isinstance(value, str) and (problem := text_problem(value)):
            return f"The order detail {name!r} is not valid: {problem}."
    return None


def clean_text(text: str) -> str:
    """Text as stored, compared and sent on: NFC-normalised, each run of whitespace one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def luhn_valid(digits: str) -> bool:
    if not digits or not set(digits) <= _ASCII_DIGITS:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def icc_problem(icc: str) -> str | None:
    """Why an ICC (SIM card number) is not valid, or None: 19–20 digits 0-9 with a Luhn check digit."""
    if not _ICC.fullmatch(icc):
        if any(ch.isdigit() and ch not in _ASCII_DIGITS for ch in icc):
            return "The SIM card's ICC number must be written with the digits 0-9 only."
        return "The SIM card's ICC number must be 19 or 20 digits."
    if not luhn_valid(icc):
        return "The SIM card's ICC number has a wrong check digit."
    return None


def clean_details(kind: OrderKind, details: Mapping[str, str]) -> dict[str, str]:
    """Order details as stored: each value cleaned (clean_text), an ICC without any spaces."""
    cleaned = {k: clean_text(str(v)) for k, v in details.items()}
    if kind is OrderKind.SIM_ACTIVATION and "icc" in cleaned:
        cleaned["icc"] = cleaned["icc"].replace(" ", "")
    return cleaned


def fingerprint(product_code: str, details: Mapping[str, str]) -> str:
    """What makes two requests with one Idempotency-Key the same request."""
    canonical = json.dumps({"product_code": product_code, "details": dict(details)}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# ---- Placing an order: the rules, on what the use case read (orders.service.place_order) ------

MAX_DETAIL_LENGTH = 200
DETAIL_FIELDS: dict[OrderKind, tuple[str, ...]] = {
    OrderKind.ADDON: (),
    OrderKind.PLAN: (),
    OrderKind.SIM_ORDER: ("delivery_name", "delivery_address"),
    OrderKind.SIM_ACTIVATION: ("icc",),
}
_SIM_KINDS = (OrderKind.SIM_ORDER, OrderKind.SIM_ACTIVATION)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeductionAcceptance:
    """What the employee accepted by pressing Ok: the amount the confirm dialog stated, in øre,
    and its text ("Dette medfører lønnstrekk: 149,00 kr.")."""

    amount_ore: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """An order the rules let through: the product, its details as cleaned, what the employee
    pays, the company's wage type for it, and the employee's acceptance when they pay anything."""

    product: Product
    details: dict[str, str]
    charge: EmployeeCharge
    wage_type: str
    acceptance: DeductionAcceptance | None


def consent_problem(charge: EmployeeCharge, acceptance: DeductionAcceptance | None) -> DomainError | None:
    """Why the employee's acceptance does not cover the charge (arbeidsmiljøloven § 14-15: a
    deduction needs their prior written agreement to that amount), or None. An order costing them
    nothing needs none; an acceptance of another amount than the policy's now is refused, so a
    price changed under the employee is never charged without their asking again."""
    if acceptance is None:
        if charge.amount_ore == 0:
            return None
        return DomainError(
            ErrorCode.DEDUCTION_NOT_ACCEPTED,
            f"This order is deducted from your salary ({charge.amount_ore} øre, {charge.billing}): "
            "accept the deduction first.",
            amount_ore=charge.amount_ore,
        )
    if acceptance.amount_ore != charge.amount_ore:
        return DomainError(
            ErrorCode.DEDUCTION_CHANGED,
            f"You accepted a deduction of {acceptance.amount_ore} øre, but the order now costs you "
            f"{charge.amount_ore} øre: confirm the new amount.",
            amount_ore=charge.amount_ore,
        )
    return None


def takes_a_place(product: Product) -> bool:
    """Whether an order of the product is one of a kind that may be open (or, for a monthly
    add-on, active) only once per subscription; a one-off top-up can be bought again and again."""
    return product.kind is OrderKind.PLAN or product.is_monthly_addon or product.kind in _SIM_KINDS


def holds_the_place(order: Order, product: Product) -> bool:
    """Whether `order` holds the place a new order of `product` would take: the rule the
    open-order indexes enforce (models.OPEN_ORDER_INDEXES, whose predicates say the same)."""
    status = OrderStatus(order.status)
    is_open = status.value in OPEN_STATUSES
    if product.kind is OrderKind.PLAN:
        return order.kind == OrderKind.PLAN and is_open  # one open plan change, whichever plan
    if product.is_monthly_addon:
        return (
            order.product_code == product.code
            and order.kind == OrderKind.ADDON
            and order.action != "delete"  # ending it holds a place of its own (ends_the_service)
            and order.billing == Billing.MONTHLY
            and status is not OrderStatus.FAILED  # open, or completed and not yet ended
            and order.ended_at is None
        )
    if product.kind in _SIM_KINDS:
        return order.product_code == product.code and is_open
    return False


def ends_the_service(order: Order, product: Product) -> bool:
    """Whether `order` is an open "Avslutt" of `product` (models.HOLDS_SERVICE_END says the same)."""
    return (
        order.action == "delete"
        and order.product_code == product.code
        and OrderStatus(order.status).value in OPEN_STATUSES
    )


def check_order(
    *,
    employee: Employee,
    product_code: str,
    details: Mapping[str, str],
    catalog: Catalog,
    policy: PolicyDocument,
    holder: Order | None,
    acceptance: DeductionAcceptance | None = None,
) -> Accepted | DomainError:
    """Whether the employee may order the product, in the order a person would ask: a refusal is
    returned, not raised, because a repeated request is answered with its first order instead."""
    subscription = employee.subscription
    if subscription is None:
        return DomainError(ErrorCode.NO_SUBSCRIPTION, "You have no mobile subscription to order for.")
    if not employee.self_service_active:
        return DomainError(
            ErrorCode.SELF_SERVICE_NOT_ACTIVATED,
            "Self-service is not activated: confirm your phone number first (Bekreft telefonnummer).",
        )
    product = catalog.get(product_code)
    if product is None:
        return DomainError(ErrorCode.UNKNOWN_PRODUCT, f"Unknown product {product_code!r}.")
    cleaned = checked_details(product.kind, details)
    if isinstance(cleaned, DomainError):
        return cleaned
    if product.kind is OrderKind.PLAN and subscription.plan_code == product.code:
        return DomainError(ErrorCode.ALREADY_ACTIVE, f"{product.name} is already your plan.")
    if product.is_monthly_addon and any(s.product_code == product.code for s in subscription.services):
        return DomainError(ErrorCode.ALREADY_ACTIVE, f"{product.name} is already active.")
    if holder is not None:
        return already(product, holder, catalog)
    decision = decide(policy, product, catalog=catalog)
    if not decision.allowed:
        return DomainError(ErrorCode.NOT_ALLOWED_BY_POLICY, f"{product.name}: {decision.reason}.")
    if refused := consent_problem(decision.charge, acceptance):
        return refused
    return Accepted(
        product=product,
        details=cleaned,
        charge=decision.charge,
        wage_type=policy.wage_type_for(product),
        acceptance=acceptance if decision.charge.amount_ore > 0 else None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ending:
    """An "Avslutt" the rules let through: the active add-on and the order that started it."""

    product: Product
    starting_order_id: uuid.UUID | None  # None for a service on file from before orders
    wage_type: str


def check_ending(
    *,
    employee: Employee,
    product_code: str,
    catalog: Catalog,
    policy: PolicyDocument,
    holder: Order | None,
) -> Ending | DomainError:
    """Whether the employee may end the monthly add-on: self-service active, the add-on active
    on their subscription, and no order ending it already on its way (`holder`)."""
    subscription = employee.subscription
    if subscription is None:
        return DomainError(ErrorCode.NO_SUBSCRIPTION, "You have no mobile subscription.")
    if not employee.self_service_active:
        return DomainError(
            ErrorCode.SELF_SERVICE_NOT_ACTIVATED,
            "Self-service is not activated: confirm your phone number first (Bekreft telefonnummer).",
        )
    product = catalog.get(product_code)
    if product is None:
        return DomainError(ErrorCode.UNKNOWN_PRODUCT, f"Unknown product {product_code!r}.")
    active = next((s for s in subscription.services if s.product_code == product.code), None)
    if not product.is_monthly_addon or active is None:
        return DomainError(ErrorCode.SERVICE_NOT_ACTIVE, f"{product.name} is not an active monthly add-on.")
    if holder is not None:
        return ending_already(product)
    return Ending(product=product, starting_order_id=active.order_id, wage_type=policy.wage_type_for(product))


def ending_already(product: Product) -> DomainError:
    return DomainError(ErrorCode.SERVICE_ALREADY_ENDING, f"{product.name} is already being ended.")


def checked_details(kind: OrderKind, details: Mapping[str, str]) -> dict[str, str] | DomainError:
    """The details as stored (clean_details), or why they cannot be taken for this kind of order."""
    wanted = DETAIL_FIELDS[kind]
    unknown = sorted(set(details) - set(wanted))
    if unknown:
        return DomainError(ErrorCode.INVALID_DETAILS, f"Unexpected order details: {', '.join(unknown)}.")
    cleaned = clean_details(kind, details)
    missing = [k for k in wanted if not cleaned.get(k)]
    if missing:
        return DomainError(ErrorCode.INVALID_DETAILS, f"Missing order details: {', '.join(missing)}.")
    too_long = [k for k, v in cleaned.items() if len(v) > MAX_DETAIL_LENGTH]
    if too_long:
        return DomainError(ErrorCode.INVALID_DETAILS, f"Too long: {', '.join(too_long)}.")
    if kind is OrderKind.SIM_ACTIVATION and (problem := icc_problem(cleaned["icc"])):
        return DomainError(ErrorCode.INVALID_ICC, problem)
    return cleaned


def already(product: Product, holder: Order | None, catalog: Catalog) -> DomainError:
    """The refusal of an order whose place `holder` holds (None: it was taken a moment ago)."""
    if holder is not None and holder.status == OrderStatus.COMPLETED:
        return DomainError(ErrorCode.ALREADY_ACTIVE, f"{product.name} is already active.")
    if holder is not None and holder.product_code != product.code:  # another plan
        other = catalog.get(holder.product_code)
        return DomainError(
            ErrorCode.ALREADY_ORDERED,
            f"A change to {other.name if other else holder.product_code} is already on its way; "
            "wait until it is done.",
        )
    return DomainError(ErrorCode.ALREADY_ORDERED, f"{product.name} is already ordered and on its way.")


def same_request(
    earlier: Order, product_code: str, details: Mapping[str, str], *, ending: bool = False
) -> DomainError | None:
    """None if a request with the key that made `earlier` is that request again; else the refusal.
    The order holds its details as cleaned when placed: the repeat's are cleaned the same way.
    `ending`: the request ends the product (Avslutt), which an order adding it is not."""
    repeat = fingerprint(product_code, clean_details(OrderKind(earlier.kind), details))
    if fingerprint(earlier.product_code, earlier.details) != repeat or (earlier.action == "delete") != ending:
        return DomainError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED, "This Idempotency-Key was already used for a different order."
        )
    return None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page of an employee's orders (newest first) ended: the next page starts just after
    this order (older, or placed at the same time with a smaller id)."""

    created_at: datetime
    order_id: uuid.UUID


# ---- Status events: how each moves an order (orders.service.apply_status_event) --------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChange:
    """What one status event does to its order, if the order is where the event may move it from.

    The condition is the rule: status only moves forward (received → submitted → completed or
    failed), and older carrier news never overwrites newer; so a late, repeated or contradicting
    event applies to nothing. The database applies it as one conditional UPDATE
    (repositories.SqlOrders.change_status), a fake with `applies_to`."""

    order_id: uuid.UUID
    to: OrderStatus
    allowed_from: tuple[OrderStatus, ...]
    # Carrier news from this moment: it applies only if no later news is on the order already.
    carrier_news_at: datetime | None = None
    # The order's other fields the change sets, by attribute name.
    values: Mapping[str, object]

    def applies_to(self, status: str, carrier_state_at: datetime | None) -> bool:
        if OrderStatus(status) not in self.allowed_from:
            return False
        return not (
            self.carrier_news_at is not None
            and carrier_state_at is not None
            and carrier_state_at > self.carrier_news_at
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangedOrder:
    """What applying a completion to the subscription needs of the order a change moved."""

    id: uuid.UUID
    status: str
    kind: str
    subscription_id: uuid.UUID
    product_code: str
    details: Mapping[str, str]
    action: str = "add"
    ends_order_id: uuid.UUID | None = None


_OPEN = (OrderStatus.RECEIVED, OrderStatus.SUBMITTED)
OrderStatusEvent = OrderSubmitted | OrderProgressed | OrderCompleted | OrderFailed


def status_change(event: OrderStatusEvent, now: datetime) -> StatusChange:
    """The change a status event asks for."""
    match event:
        case OrderSubmitted():
            at = _utc(event.submitted_at)
            return StatusChange(
                order_id=event.order_id,
                to=OrderStatus.SUBMITTED,
                allowed_from=(OrderStatus.RECEIVED,),
                values={
                    "carrier_order_id": event.carrier_order_id,
                    **_carrier_says(event.carrier_state, event.expected_completion_at, at),
                    "updated_at": now,
                },
            )
        case OrderProgressed():
            at = _utc(event.progressed_at)
            return StatusChange(
                order_id=event.order_id,
                # A progressed order with the carrier is submitted, even if its OrderSubmitted is
                # late (in a retry queue).
                to=OrderStatus.SUBMITTED,
                allowed_from=_OPEN,
                carrier_news_at=at,
                values={
                    "carrier_order_id": event.carrier_order_id,
                    **_carrier_says(event.carrier_state, event.expected_completion_at, at),
                    "updated_at": now,
                },
            )
        case OrderCompleted():
            return StatusChange(
                order_id=event.order.order_id,
                to=OrderStatus.COMPLETED,
                allowed_from=_OPEN,
                values={"carrier_order_id": event.carrier_order_id, "updated_at": now},
            )
        case OrderFailed():
            return StatusChange(
                order_id=event.order.order_id,
                to=OrderStatus.FAILED,
                allowed_from=_OPEN,
                values={
                    "failure_reason": event.reason,
                    "failure_code": event.reason_code.value,
                    "updated_at": now,
                },
            )
        case _:
            assert_never(event)


def _carrier_says(state: str | None, expected: datetime | None, at: datetime) -> dict[str, object]:
    """What the carrier last said of the order (its state, when it expects to be done), and when."""
    return {
        "carrier_state": state,
        "expected_completion_at": _utc(expected) if expected is not None else None,
        "carrier_state_at": at,
    }


def _utc(moment: datetime) -> datetime:
    # Events carry UTC times; one without a zone (a carrier's date passed on as it came) is UTC too.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
