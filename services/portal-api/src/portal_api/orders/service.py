"""Orders' use cases (placing an order, applying a status event) and queries. Each takes a unit of
work and raises DomainError with a stable code; none knows HTTP or the broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from mport_shared.events import (
    Billing,
    EmployeeCharge,
    Envelope,
    EventPayload,
    OrderKind,
    OrderPlaced,
    OrderSnapshot,
    envelop,
)
from mport_shared.events import (
    Consent as ConsentSnapshot,
)
from mport_shared.logging import get_logger

from portal_api.catalog.products import Catalog, Product
from portal_api.errors import DomainError, ErrorCode, NotSignedIn
from portal_api.models import Consent, Employee, Order, SimCard, Subscription
from portal_api.orders.domain import (
    Accepted,
    ChangedOrder,
    DeductionAcceptance,
    Ending,
    OrderStatus,
    OrderStatusEvent,
    Position,
    already,
    check_ending,
    check_order,
    clean_text,
    ending_already,
    same_request,
    status_change,
    takes_a_place,
)
from portal_api.unit_of_work import IdempotencyKeyTaken, PlaceTaken, UnitOfWork

SOURCE = "/mport/portal-api"
MAIN_SIM_LABEL = "Sim hovedkort"  # what a main SIM made by an activation is called: a label only
SHIPPED_SIM_LABEL = "Nytt SIM (sendt)"
log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """An order with its product, as the API and the pages show it."""

    order: Order
    product: Product


# ---- Placing an order ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder:
    employee_id: uuid.UUID
    product_code: str
    details: Mapping[str, str]
    idempotency_key: str
    # What the employee accepted in the confirm dialog; needed when the order costs them anything.
    accept_deduction: DeductionAcceptance | None = None


async def place_order(
    uow: UnitOfWork, command: PlaceOrder, *, clock: Callable[[], datetime] = utc_now
) -> PlacedOrder:
    """Store the order and its OrderPlaced event in one transaction, or answer with the order
    this Idempotency-Key made before.

    Optimistic: the checks and the INSERT come first, and the unique (employee, key) constraint
    catches a repeated key, so a first request, the usual case, costs no look-up by key. A repeat
    is answered with the order its key made, whether it now passes the checks (the INSERT then
    conflicts, even when the two requests race) or not (e.g. the add-on it ordered is active now).

    What may be open at once is checked first with a read, for a precise answer, and enforced by
    the open-order indexes: of concurrent requests that all pass the read, one commits and the
    others' commits raise PlaceTaken, which is answered with the same refusal."""
    async with uow:
        employee = await uow.employees.for_ordering(command.employee_id)
        if employee is None:  # the session outlived the employee's record
            raise NotSignedIn()
        catalog = await uow.products.catalog()
        product = catalog.get(command.product_code)
        subscription = employee.subscription
        holder = None
        if product is not None and subscription is not None and takes_a_place(product):
            holder = await uow.orders.holding_place(subscription.id, product)
        verdict = check_order(
            employee=employee,
            product_code=command.product_code,
            details=command.details,
            catalog=catalog,
            policy=await uow.policies.of(employee.company_id),
            holder=holder,
            acceptance=command.accept_deduction,
        )
        refusal: DomainError | None
        if isinstance(verdict, DomainError):
            refusal = verdict
        else:
            assert subscription is not None  # check_order accepts no order without one
            subscription_id = subscription.id  # read now: a rollback expires the loaded objects
            order = _new_order(employee, verdict, command, clock())
            uow.orders.add(order)
            uow.messages.publish(_order_placed(order, employee, verdict))
            try:
                await uow.commit()
            except IdempotencyKeyTaken:
                refusal = None  # the key's first request committed first: answered below
            except PlaceTaken:
                holder = await uow.orders.holding_place(subscription_id, verdict.product)
                refusal = already(verdict.product, holder, catalog)
            else:
                return PlacedOrder(order, verdict.product)
        return await _repeat_or_refuse(
            uow, catalog, command.employee_id, command.idempotency_key, refusal,
            command.product_code, command.details,
        )  # fmt: skip


async def _repeat_or_refuse(
    uow: UnitOfWork,
    catalog: Catalog,
    employee_id: uuid.UUID,
    idempotency_key: str,
    refusal: DomainError | None,
    product_code: str,
    details: Mapping[str, str],
    *,
    ending: bool = False,
) -> PlacedOrder:
    """Refused, or another request got there first: if this key made an order, this is a repeat
    of its request, answered with that order whatever the checks say now; else the refusal."""
    earlier = await uow.orders.by_key(employee_id, idempotency_key)
    if earlier is not None:
        if reused := same_request(earlier, product_code, details, ending=ending):
            raise reused
        return _with_product(earlier, catalog)
    if refusal is None:
        raise RuntimeError("the Idempotency-Key's order vanished after its INSERT conflicted")
    raise refusal


def _new_order(employee: Employee, accepted: Accepted, command: PlaceOrder, now: datetime) -> Order:
    subscription = employee.subscription
    assert subscription is not None
    order = Order(
        id=uuid.uuid4(),
        company_id=employee.company_id,
        employee_id=employee.id,
        subscription_id=subscription.id,
        idempotency_key=command.idempotency_key,
        msisdn=subscription.msisdn,
        product_code=accepted.product.code,
        kind=accepted.product.kind.value,
        details=accepted.details,
        status=OrderStatus.RECEIVED.value,
        employee_charge_ore=accepted.charge.amount_ore,
        billing=accepted.charge.billing.value,
        created_at=now,
        updated_at=now,
        action="modify" if accepted.product.kind is OrderKind.PLAN else "add",
        product_name=accepted.product.name,
        wage_type=accepted.wage_type,
    )
    if accepted.acceptance is not None:
        # Recorded with the order, in its transaction: no order charges without its consent.
        order.consent = Consent(
            id=uuid.uuid4(),
            company_id=employee.company_id,
            employee_id=employee.id,
            accepted_at=now,
            amount_ore=accepted.charge.amount_ore,
            billing=accepted.charge.billing.value,
            text=clean_text(accepted.acceptance.text),
        )
        order.consent_id = order.consent.id
    return order


def _consent_of(order: Order) -> ConsentSnapshot | None:
    consent = order.consent if order.consent_id is not None else None
    if consent is None:
        return None
    return ConsentSnapshot(
        consent_id=consent.id,
        employee_id=consent.employee_id,
        accepted_at=consent.accepted_at,
        amount_ore=consent.amount_ore,
        billing=Billing(consent.billing),
        text=consent.text,
    )


def _order_placed(order: Order, employee: Employee, accepted: Accepted) -> Envelope[EventPayload]:
    product = accepted.product
    snapshot = OrderSnapshot(
        order_id=order.id,
        company_id=order.company_id,
        employee_id=order.employee_id,
        employee_number=employee.employee_number,
        msisdn=order.msisdn,
        product_code=product.code,
        carrier_product_code=product.carrier_product_code,
        kind=product.kind,
        action="modify" if product.kind is OrderKind.PLAN else "add",
        details=order.details,
        employee_charge=accepted.charge,
        placed_at=order.created_at,
        product_name=product.name,
        wage_type=accepted.wage_type,
        consent=_consent_of(order),
    )
    return _placed(snapshot)


def _placed(snapshot: OrderSnapshot) -> Envelope[EventPayload]:
    order_id = snapshot.order_id
    return envelop(
        OrderPlaced(order=snapshot), source=SOURCE, correlation_id=str(order_id), subject=str(order_id)
    )


# ---- Ending a monthly add-on ("Avslutt") --------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EndService:
    employee_id: uuid.UUID
    product_code: str
    idempotency_key: str


async def end_service(
    uow: UnitOfWork, command: EndService, *, clock: Callable[[], datetime] = utc_now
) -> PlacedOrder:
    """Place the order that ends a monthly add-on (action delete, to the carrier as TMF622
    delete), with its OrderPlaced, in one transaction; its completion removes the add-on from the
    subscription (apply_status_event). One open ending per add-on, as one open order of it; a
    repeated Idempotency-Key is answered with the order it made, as place_order does."""
    async with uow:
        employee = await uow.employees.for_ordering(command.employee_id)
        if employee is None:
            raise NotSignedIn()
        catalog = await uow.products.catalog()
        product = catalog.get(command.product_code)
        subscription = employee.subscription
        holder = None
        if product is not None and subscription is not None:
            holder = await uow.orders.ending(subscription.id, product.code)
        verdict = check_ending(
            employee=employee,
            product_code=command.product_code,
            catalog=catalog,
            policy=await uow.policies.of(employee.company_id),
            holder=holder,
        )
        refusal: DomainError | None
        if isinstance(verdict, DomainError):
            refusal = verdict
        else:
            order = _ending_order(employee, verdict, command, clock())
            uow.orders.add(order)
            uow.messages.publish(_ending_placed(order, employee, verdict))
            try:
                await uow.commit()
            except IdempotencyKeyTaken:
                refusal = None
            except PlaceTaken:
                refusal = ending_already(verdict.product)
            else:
                return PlacedOrder(order, verdict.product)
        return await _repeat_or_refuse(
            uow, catalog, command.employee_id, command.idempotency_key, refusal,
            command.product_code, {}, ending=True,
        )  # fmt: skip


def _ending_order(employee: Employee, ending: Ending, command: EndService, now: datetime) -> Order:
    subscription = employee.subscription
    assert subscription is not None
    return Order(
        id=uuid.uuid4(),
        company_id=employee.company_id,
        employee_id=employee.id,
        subscription_id=subscription.id,
        idempotency_key=command.idempotency_key,
        msisdn=subscription.msisdn,
        product_code=ending.product.code,
        kind=OrderKind.ADDON.value,
        details={},
        status=OrderStatus.RECEIVED.value,
        employee_charge_ore=0,  # ending costs nothing; its deductions stop
        billing=Billing.MONTHLY.value,
        created_at=now,
        updated_at=now,
        action="delete",
        ends_order_id=ending.starting_order_id,
        product_name=ending.product.name,
        wage_type=ending.wage_type,
    )


def _ending_placed(order: Order, employee: Employee, ending: Ending) -> Envelope[EventPayload]:
    product = ending.product
    return _placed(
        OrderSnapshot(
            order_id=order.id,
            company_id=order.company_id,
            employee_id=order.employee_id,
            employee_number=employee.employee_number,
            msisdn=order.msisdn,
            product_code=product.code,
            carrier_product_code=product.carrier_product_code,
            kind=product.kind,
            action="delete",
            employee_charge=EmployeeCharge(amount_ore=0, billing=Billing.MONTHLY),
            placed_at=order.created_at,
            product_name=product.name,
            wage_type=ending.wage_type,
            ends_order_id=ending.starting_order_id,
        )
    )


def _with_product(order: Order, catalog: Catalog) -> PlacedOrder:
    product = catalog.get(order.product_code)
    if product is None:  # the products table is only ever added to (orders refer to it)
        raise LookupError(f"order {order.id} is of {order.product_code!r}, which the catalog lacks")
    return PlacedOrder(order, product)


# ---- Reading orders ------------------------------------------------------------------------------


async def orders_of(
    uow: UnitOfWork, employee_id: uuid.UUID, *, after: Position | None = None, limit: int | None = None
) -> list[PlacedOrder]:
    """The employee's orders, newest first (by placing time, then id): those after `after`, at
    most `limit` (orders.listing makes pages of them)."""
    catalog = await uow.products.catalog()
    found = await uow.orders.of_employee(employee_id, after=after, limit=limit)
    return [_with_product(o, catalog) for o in found]


async def order_of(uow: UnitOfWork, employee_id: uuid.UUID, order_id: uuid.UUID) -> PlacedOrder:
    """One of the employee's orders; another employee's order is indistinguishable from none."""
    order = await uow.orders.get(employee_id=employee_id, order_id=order_id)
    if order is None:
        raise DomainError(ErrorCode.ORDER_NOT_FOUND, f"No order {order_id}.")
    return _with_product(order, await uow.products.catalog())


# ---- Applying a status event from the workers ---------------------------------------------------


class StatusOutcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"  # late, repeated or contradicting: the order stays as it is
    DUPLICATE = "duplicate"  # this very message was handled before
    UNKNOWN_ORDER = "unknown_order"


async def apply_status_event(
    uow: UnitOfWork, *, message_id: str, event: OrderStatusEvent, clock: Callable[[], datetime] = utc_now
) -> StatusOutcome:
    """Move the order forward as the event says, if the rules let it (orders.domain.status_change),
    and on completion change the subscription; once per message, in one transaction."""
    async with uow:
        if not await uow.messages.claim(message_id):
            return StatusOutcome.DUPLICATE
        now = clock()
        change = status_change(event, now)
        changed = await uow.orders.change_status(change)
        if changed is None:
            if await uow.orders.find(change.order_id) is None:
                return StatusOutcome.UNKNOWN_ORDER  # rolled back: the message is not recorded
            await uow.commit()
            return StatusOutcome.UNCHANGED
        if changed.status == OrderStatus.COMPLETED:
            await _complete(uow, changed, now)
        await uow.commit()
    log.info("order status changed", order_id=str(changed.id), status=changed.status)
    return StatusOutcome.APPLIED


async def _complete(uow: UnitOfWork, order: ChangedOrder, now: datetime) -> None:
    """A completed order changes the subscription: an add-on, a new plan, or a SIM card; an
    ending (Avslutt) removes the add-on, and the order that started it stops holding its place."""
    if order.action == "delete":
        await uow.subscriptions.remove_service(order.subscription_id, order.product_code)
        await uow.orders.end_service(order.subscription_id, order.product_code, at=now)
        return
    if OrderKind(order.kind) is OrderKind.ADDON:
        await uow.subscriptions.add_service(order.subscription_id, order.product_code, order.id)
        return
    subscription = await uow.subscriptions.get(order.subscription_id)
    if subscription is None:
        log.warning("completed order for a subscription no longer on file", order_id=str(order.id))
        return
    complete_on(subscription, order)


def complete_on(subscription: Subscription, order: ChangedOrder) -> None:
    """What a completed plan change, SIM order or SIM activation does to the subscription."""
    match OrderKind(order.kind):
        case OrderKind.PLAN:
            subscription.plan_code = order.product_code
        case OrderKind.SIM_ORDER:
            subscription.sim_cards.append(SimCard(label=SHIPPED_SIM_LABEL, status="ordered", is_main=False))
        case OrderKind.SIM_ACTIVATION:
            # The new SIM takes the main SIM's place: the one marked so, whatever it is called.
            icc = order.details.get("icc")
            main = next((s for s in subscription.sim_cards if s.is_main), None)
            if main is None:
                subscription.sim_cards.append(
                    SimCard(label=MAIN_SIM_LABEL, icc=icc, status="active", is_main=True)
                )
            else:
                main.icc = icc
                main.status = "active"
        case OrderKind.ADDON:
            raise ValueError("an add-on completes with add_service; it needs no subscription loaded")
