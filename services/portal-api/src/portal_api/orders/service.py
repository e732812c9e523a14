"""Placing an order: checks, then the order row and its OrderPlaced event in one transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from mport_shared.events import OrderKind, OrderPlaced, OrderSnapshot, envelop
from mport_shared.messaging.outbox import add_to_outbox
from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from portal_api.catalog.service import CatalogProduct, load_policy, price_for, product_catalog
from portal_api.models import (
    HOLDS_MONTHLY_ADDON,
    HOLDS_PLAN_CHANGE,
    HOLDS_SIM_SERVICE,
    OPEN_ORDER_INDEXES,
    Employee,
    Order,
    Product,
    tables,
)
from portal_api.orders.domain import OrderStatus, clean_details, fingerprint, icc_problem
from portal_api.problems import Problem

SOURCE = "/mport/portal-api"
MAX_DETAIL_LENGTH = 200
_DETAIL_FIELDS: dict[OrderKind, tuple[str, ...]] = {
    OrderKind.ADDON: (),
    OrderKind.PLAN: (),
    OrderKind.SIM_ORDER: ("delivery_name", "delivery_address"),
    OrderKind.SIM_ACTIVATION: ("icc",),
}


async def find_by_key(session: AsyncSession, employee_id: uuid.UUID, key: str) -> Order | None:
    return await session.scalar(
        select(Order).where(Order.employee_id == employee_id, Order.idempotency_key == key)
    )


def _same_request_or_conflict(order: Order, product_code: str, details: dict[str, str]) -> Order:
    # The order holds the details as cleaned when it was placed: clean the repeat's the same way.
    repeat = fingerprint(product_code, clean_details(OrderKind(order.kind), details))
    if fingerprint(order.product_code, order.details) != repeat:
        raise Problem(
            422,
            "This Idempotency-Key was already used for a different order.",
            title="Idempotency-Key reused",
        )
    return order


async def place_order(
    session: AsyncSession,
    *,
    employee: Employee,
    product_code: str,
    details: dict[str, str],
    idempotency_key: str,
) -> tuple[Order, CatalogProduct | Product]:
    """Store the order and its event, or return the order this key already made; with its product
    (a new order's catalog entry, or an existing order's product row), so answering needs no query.

    Optimistic: the checks and the INSERT come first, and the unique (employee, key) constraint
    catches a repeated key, so a first request, the usual case, costs no look-up. A repeat is
    answered with the order its key made, whether it now passes the checks (the INSERT then
    conflicts, even when the two requests race) or not (e.g. the add-on it ordered is active now).

    What may be open at once is checked first with a read, for a precise answer, and enforced by
    the open-order indexes (models.OPEN_ORDER_INDEXES): of concurrent requests that all pass the
    read, one commits and the others' INSERTs fail on an index, which is answered with the same 409."""
    # Read now: a rollback below expires the employee object.
    employee_id = employee.id
    subscription_id = employee.subscription.id if employee.subscription else None
    try:
        order, product = await _new_order(
            session,
            employee=employee,
            product_code=product_code,
            details=details,
            idempotency_key=idempotency_key,
        )
        await session.commit()
    except (Problem, IntegrityError) as error:
        await session.rollback()
        existing = await find_by_key(session, employee_id, idempotency_key)
        if existing is not None:
            return _same_request_or_conflict(existing, product_code, details), existing.product
        if (
            isinstance(error, IntegrityError)
            and subscription_id is not None
            and _broke_an_open_order_index(error)
        ):
            catalog_product = (await product_catalog(session)).by_code[product_code]
            holder = await _order_in_the_way(session, subscription_id, catalog_product)
            raise _already(catalog_product, holder) from error
        raise
    return order, product


def _broke_an_open_order_index(error: IntegrityError) -> bool:
    """PostgreSQL names the index in its message; SQLite names the columns, and only the
    open-order indexes start with orders.subscription_id."""
    message = str(error.orig)
    return "orders.subscription_id" in message or any(str(i.name) in message for i in OPEN_ORDER_INDEXES)


async def _new_order(
    session: AsyncSession,
    *,
    employee: Employee,
    product_code: str,
    details: dict[str, str],
    idempotency_key: str,
) -> tuple[Order, CatalogProduct]:
    subscription = employee.subscription
    if subscription is None:
        raise Problem(409, "You have no mobile subscription to order for.", title="No subscription")
    if not employee.self_service_active:
        raise Problem(
            403,
            "Self-service is not activated: confirm your phone number first (Bekreft telefonnummer).",
            title="Self-service not activated",
        )
    products = (await product_catalog(session)).by_code
    product = products.get(product_code)
    if product is None:
        raise Problem(422, f"Unknown product {product_code!r}.", title="Unknown product")
    kind = OrderKind(product.kind)
    details = _checked_details(kind, details)
    await _check_not_already_active(session, employee, product, kind)
    allowed, charge, reason = price_for(product, await load_policy(session, employee.company_id), products)
    if not allowed:
        raise Problem(403, f"{product.name}: {reason}.", title="Not allowed by policy")
    now = datetime.now(UTC)
    order = Order(
        id=uuid.uuid4(),
        company_id=employee.company_id,
        employee_id=employee.id,
        subscription_id=subscription.id,
        idempotency_key=idempotency_key,
        msisdn=subscription.msisdn,
        product_code=product.code,
        kind=kind.value,
        details=details,
        status=OrderStatus.RECEIVED.value,
        employee_charge_ore=charge.amount_ore,
        billing=charge.billing.value,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    snapshot = OrderSnapshot(
        order_id=order.id,
        company_id=employee.company_id,
        employee_id=employee.id,
        employee_number=employee.employee_number,
        msisdn=subscription.msisdn,
        product_code=product.code,
        carrier_product_code=product.carrier_code,
        kind=kind,
        action="modify" if kind is OrderKind.PLAN else "add",
        details=details,
        employee_charge=charge,
        placed_at=now,
    )
    await add_to_outbox(
        session,
        tables.outbox,
        envelop(
            OrderPlaced(order=snapshot), source=SOURCE, correlation_id=str(order.id), subject=str(order.id)
        ),
    )
    return order, product


def _checked_details(kind: OrderKind, details: dict[str, str]) -> dict[str, str]:
    wanted = _DETAIL_FIELDS[kind]
    unknown = sorted(set(details) - set(wanted))
    if unknown:
        raise Problem(422, f"Unexpected order details: {', '.join(unknown)}.", title="Invalid order details")
    cleaned = clean_details(kind, details)
    missing = [k for k in wanted if not cleaned.get(k)]
    if missing:
        raise Problem(422, f"Missing order details: {', '.join(missing)}.", title="Invalid order details")
    too_long = [k for k, v in cleaned.items() if len(v) > MAX_DETAIL_LENGTH]
    if too_long:
        raise Problem(422, f"Too long: {', '.join(too_long)}.", title="Invalid order details")
    if kind is OrderKind.SIM_ACTIVATION:
        problem = icc_problem(cleaned["icc"])
        if problem:
            raise Problem(422, problem, title="Invalid ICC number")
    return cleaned


async def _check_not_already_active(
    session: AsyncSession, employee: Employee, product: CatalogProduct, kind: OrderKind
) -> None:
    subscription = employee.subscription
    assert subscription is not None
    if kind is OrderKind.PLAN and subscription.plan_code == product.code:
        raise Problem(409, f"{product.name} is already your plan.", title="Plan already active")
    if _is_monthly_addon(product) and any(s.product_code == product.code for s in subscription.services):
        raise Problem(409, f"{product.name} is already active.", title="Already active")
    holder = await _order_in_the_way(session, subscription.id, product)
    if holder is not None:
        raise _already(product, holder)


def _is_monthly_addon(product: CatalogProduct) -> bool:
    return product.kind == OrderKind.ADDON and product.billing == "monthly"


async def _order_in_the_way(
    session: AsyncSession, subscription_id: uuid.UUID, product: CatalogProduct
) -> Order | None:
    """The order that holds the place a new order of this product would take, if any: the same
    condition as the open-order index that would refuse the new order's row."""
    kind = OrderKind(product.kind)
    if kind is OrderKind.PLAN:
        where = HOLDS_PLAN_CHANGE  # one open plan change, whichever plan
    elif kind is OrderKind.ADDON and _is_monthly_addon(product):
        where = and_(HOLDS_MONTHLY_ADDON, Order.product_code == product.code)
    elif kind in (OrderKind.SIM_ORDER, OrderKind.SIM_ACTIVATION):
        where = and_(HOLDS_SIM_SERVICE, Order.product_code == product.code)
    else:
        return None  # a one-off top-up may be bought again and again
    query = select(Order).where(Order.subscription_id == subscription_id, where)
    return await session.scalar(query.order_by(Order.created_at).limit(1))


def _already(product: CatalogProduct, holder: Order | None) -> Problem:
    if holder is not None and holder.status == OrderStatus.COMPLETED:
        return Problem(409, f"{product.name} is already active.", title="Already active")
    if holder is not None and holder.product_code != product.code:  # another plan
        return Problem(
            409,
            f"A change to {holder.product.name} is already on its way; wait until it is done.",
            title="Already ordered",
        )
    return Problem(409, f"{product.name} is already ordered and on its way.", title="Already ordered")


async def orders_of(session: AsyncSession, employee: Employee) -> list[Order]:
    rows = await session.scalars(
        select(Order).where(Order.employee_id == employee.id).order_by(Order.created_at.desc())
    )
    return list(rows.all())


async def order_of(session: AsyncSession, employee: Employee, order_id: uuid.UUID) -> Order:
    """An order of this employee's; another employee's order is indistinguishable from none."""
    order = await session.scalar(select(Order).where(Order.id == order_id, Order.employee_id == employee.id))
    if order is None:
        raise Problem(404, f"No order {order_id}.", title="Order not found")
    return order
