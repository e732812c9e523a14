"""The order rules through the use cases, on a unit of work in memory (tests/fakes.py): no
database, no broker, no I/O, so they run in milliseconds (`make test-fast`). The same rules on
PostgreSQL and RabbitMQ: test_orders_api.py, test_open_orders.py, test_status_events.py."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mport_shared.events import (
    Billing,
    EmployeeCharge,
    OrderCompleted,
    OrderFailed,
    OrderFailureCode,
    OrderKind,
    OrderPlaced,
    OrderProgressed,
    OrderSnapshot,
    OrderSubmitted,
)
from portal_api.catalog.policy import DEMO_POLICY, decide
from portal_api.catalog.products import CATALOG, Catalog
from portal_api.errors import DomainError, ErrorCode
from portal_api.models import ActiveService, Company, Employee, Order, SimCard, Subscription
from portal_api.orders.domain import DeductionAcceptance, Position
from portal_api.orders.service import (
    PlacedOrder,
    PlaceOrder,
    StatusOutcome,
    apply_status_event,
    order_of,
    orders_of,
    place_order,
)

from .fakes import FakeUnitOfWork

COMPANY = uuid.UUID("00000000-0000-4000-8000-00000000c0de")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
GOOD_ICC = "8947080012345678900"
FULLWIDTH_ICC = "".join(chr(0xFF10 + int(d)) for d in GOOD_ICC)  # digits, but not 0-9


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests must not reach anything: a connection attempt fails the test."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a unit test of the order rules tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def employee(
    *,
    self_service: bool = True,
    plan: str = "bedrift-total-c",
    services: tuple[str, ...] = ("hoved-sim",),
    subscription: bool = True,
    sims: tuple[SimCard, ...] = (),
) -> Employee:
    person = Employee(
        id=uuid.uuid4(),
        company_id=COMPANY,
        email="kari@example.no",
        name="Kari Nordmann",
        employee_number="1001",
        is_admin=False,
        self_service_active=self_service,
        company=Company(id=COMPANY, name="Demo Bedrift AS"),
    )
    if subscription:
        person.subscription = Subscription(
            id=uuid.uuid4(),
            employee_id=person.id,
            msisdn="4791234567",
            plan_code=plan,
            services=[ActiveService(product_code=code) for code in services],
            sim_cards=list(sims),
        )
    return person


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork(Catalog(CATALOG))


@pytest.fixture
def kari(uow: FakeUnitOfWork) -> Employee:
    person = employee()
    uow.add_employee(person, DEMO_POLICY)
    return person


AS_THE_POLICY_SAYS = DeductionAcceptance(amount_ore=-1, text="")  # the employee accepts what they are shown


def shown(product_code: str) -> DeductionAcceptance | None:
    """The acceptance of the deduction the confirm dialog shows under the demo policy, if any."""
    catalog = Catalog(CATALOG)
    product = catalog.get(product_code)
    if product is None:
        return None
    amount = decide(DEMO_POLICY, product, catalog=catalog).charge.amount_ore
    return (
        DeductionAcceptance(amount_ore=amount, text=f"Dette medfører lønnstrekk: {amount} øre.")
        if amount
        else None
    )


async def order(
    uow: FakeUnitOfWork,
    who: Employee,
    product_code: str,
    *,
    key: str | None = None,
    accept: DeductionAcceptance | None = AS_THE_POLICY_SAYS,
    **details: str,
) -> PlacedOrder:
    command = PlaceOrder(
        employee_id=who.id,
        product_code=product_code,
        details=details,
        idempotency_key=key or str(uuid.uuid4()),
        accept_deduction=shown(product_code) if accept is AS_THE_POLICY_SAYS else accept,
    )
    return await place_order(uow, command, clock=lambda: NOW)


async def refused(uow: FakeUnitOfWork, who: Employee, product_code: str, **details: str) -> DomainError:
    with pytest.raises(DomainError) as refusal:
        await order(uow, who, product_code, **details)
    return refusal.value


def placed_events(uow: FakeUnitOfWork) -> list[OrderPlaced]:
    events = [e.data for e in uow.messages.published]
    assert all(isinstance(e, OrderPlaced) for e in events)
    return events


# ---- Placing an order ---------------------------------------------------------------------------


async def test_an_accepted_order_is_stored_with_its_event_in_one_commit(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    placed = await order(uow, kari, "ekstra-data-15gb")
    assert placed.product.name == "Ekstra Data 15GB"
    assert placed.order.status == "received"
    assert placed.order.msisdn == "4791234567"
    assert placed.order.created_at == NOW
    assert (placed.order.employee_charge_ore, placed.order.billing) == (14_900, "one_off")  # Ekstra Data
    assert uow.orders.stored == [placed.order]
    assert uow.commits == 1
    [event] = placed_events(uow)
    assert event.order.order_id == placed.order.id
    assert event.order.carrier_product_code == "Surf-15GB"
    assert event.order.employee_number == "1001"
    assert event.order.action == "add"
    assert event.order.employee_charge == EmployeeCharge(amount_ore=14_900, billing=Billing.ONE_OFF)


async def test_a_plan_change_modifies_and_charges_the_monthly_difference_above_the_covered_plan(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    placed = await order(uow, kari, "bedrift-total-e")
    [event] = placed_events(uow)
    assert event.order.action == "modify"
    assert event.order.employee_charge == EmployeeCharge(amount_ore=49_900 - 39_900, billing=Billing.MONTHLY)
    assert placed.order.kind == OrderKind.PLAN


@pytest.mark.parametrize(
    ("who", "product", "details", "code", "detail_part"),
    [
        ({"subscription": False}, "nettvern", {}, ErrorCode.NO_SUBSCRIPTION, "no mobile subscription"),
        ({"self_service": False}, "nettvern", {}, ErrorCode.SELF_SERVICE_NOT_ACTIVATED, "Bekreft"),
        ({}, "no-such-thing", {}, ErrorCode.UNKNOWN_PRODUCT, "'no-such-thing'"),
        ({}, "nettvern", {"icc": "1"}, ErrorCode.INVALID_DETAILS, "Unexpected order details: icc"),
        ({}, "bestill-sim", {"delivery_name": "Kari"}, ErrorCode.INVALID_DETAILS, "delivery_address"),
        ({}, "bestill-sim", {"delivery_name": "K" * 201, "delivery_address": "Storgata 1"},
         ErrorCode.INVALID_DETAILS, "Too long: delivery_name"),
        ({}, "aktiver-nytt-sim", {"icc": "12345"}, ErrorCode.INVALID_ICC, "19 or 20 digits"),
        ({}, "aktiver-nytt-sim", {"icc": "8947080012345678901"}, ErrorCode.INVALID_ICC, "check digit"),
        ({}, "aktiver-nytt-sim", {"icc": FULLWIDTH_ICC}, ErrorCode.INVALID_ICC, "0-9"),
        ({}, "bedrift-total-c", {}, ErrorCode.ALREADY_ACTIVE, "already your plan"),
        ({"services": ("hoved-sim", "tvilling")}, "tvilling", {}, ErrorCode.ALREADY_ACTIVE, "already active"),
        ({}, "datakort", {}, ErrorCode.NOT_ALLOWED_BY_POLICY, "Datakort: Not allowed"),
    ],
)  # fmt: skip
async def test_a_refused_order_has_a_stable_code_and_stores_and_publishes_nothing(
    uow: FakeUnitOfWork,
    who: dict[str, Any],
    product: str,
    details: dict[str, str],
    code: ErrorCode,
    detail_part: str,
) -> None:
    person = employee(**who)
    uow.add_employee(person, DEMO_POLICY)
    refusal = await refused(uow, person, product, **details)
    assert refusal.code is code
    assert detail_part in refusal.detail
    assert uow.orders.stored == []
    assert uow.messages.published == []
    assert uow.commits == 0


async def test_an_unknown_employee_is_not_signed_in(uow: FakeUnitOfWork) -> None:
    refusal = await refused(uow, employee(), "nettvern")
    assert refusal.code is ErrorCode.NOT_SIGNED_IN


async def test_the_same_key_gets_the_same_order_and_a_different_order_with_it_is_refused(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    first = await order(uow, kari, "ekstra-data-1gb", key="k")
    again = await order(uow, kari, "ekstra-data-1gb", key="k")
    with pytest.raises(DomainError) as reused:
        await order(uow, kari, "ekstra-data-5gb", key="k")
    assert again.order is first.order
    assert reused.value.code is ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert len(uow.orders.stored) == len(placed_events(uow)) == 1


async def test_a_repeat_is_compared_as_cleaned(uow: FakeUnitOfWork, kari: Employee) -> None:
    first = await order(uow, kari, "aktiver-nytt-sim", key="k", icc="8947 0800 1234 5678 900")
    again = await order(uow, kari, "aktiver-nytt-sim", key="k", icc=GOOD_ICC)
    assert first.order.details == {"icc": GOOD_ICC}
    assert again.order is first.order


async def test_a_repeat_gets_its_order_even_when_the_checks_now_refuse_it(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    first = await order(uow, kari, "tvilling", key="k")
    assert (await refused(uow, kari, "tvilling")).code is ErrorCode.ALREADY_ORDERED  # a new key
    kari.self_service_active = False  # and now it would be refused on every count
    again = await order(uow, kari, "tvilling", key="k")
    assert again.order is first.order


async def test_what_holds_a_place_refuses_the_next_one_until_it_is_done(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    plan = await order(uow, kari, "bedrift-total-e")
    other_plan = await refused(uow, kari, "bedrift-total-d")
    assert other_plan.code is ErrorCode.ALREADY_ORDERED
    assert (
        other_plan.detail
        == "A change to Bedrift Total E (50GB) is already on its way; wait until it is done."
    )
    monthly = await order(uow, kari, "tvilling")
    assert (await refused(uow, kari, "tvilling")).detail == "Tvilling is already ordered and on its way."
    monthly.order.status = "completed"
    assert (await refused(uow, kari, "tvilling")).code is ErrorCode.ALREADY_ACTIVE
    monthly.order.ended_at = NOW  # ended ("Avslutt"): it holds no place any more
    await order(uow, kari, "tvilling")
    plan.order.status = "failed"
    await order(uow, kari, "bedrift-total-d")
    sim = {"delivery_name": "Kari", "delivery_address": "Storgata 1"}
    await order(uow, kari, "bestill-sim", **sim)
    assert (await refused(uow, kari, "bestill-sim", **sim)).code is ErrorCode.ALREADY_ORDERED
    await order(uow, kari, "aktiver-nytt-sim", icc=GOOD_ICC)  # a SIM order and an activation at once


async def test_a_one_off_top_up_can_be_bought_again_and_again(uow: FakeUnitOfWork, kari: Employee) -> None:
    for _ in range(3):
        await order(uow, kari, "ekstra-data-1gb")
    assert len(uow.orders.stored) == 3


def _rival(uow: FakeUnitOfWork, of: Employee, product_code: str, *, key: str) -> Order:
    """An order another request committed while this one was between its read and its commit."""
    assert of.subscription is not None
    rival = Order(
        id=uuid.uuid4(), company_id=COMPANY, employee_id=of.id, subscription_id=of.subscription.id,
        idempotency_key=key, msisdn="4791234567", product_code=product_code,
        kind=uow.catalog.by_code[product_code].kind.value, details={}, status="received",
        employee_charge_ore=0, billing="monthly", created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    uow.orders.stored.append(rival)
    return rival


async def test_losing_the_race_for_a_place_is_the_same_refusal_as_finding_it_taken(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    uow.before_commit = lambda u: _rival(u, kari, "bedrift-total-d", key="the other request")
    refusal = await refused(uow, kari, "bedrift-total-e")
    assert refusal.code is ErrorCode.ALREADY_ORDERED
    assert "Bedrift Total D (25 GB)" in refusal.detail
    assert [o.product_code for o in uow.orders.stored] == ["bedrift-total-d"]
    assert uow.messages.published == []


async def test_losing_the_race_to_a_twin_with_the_same_key_returns_the_twins_order(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    twin: list[Order] = []
    uow.before_commit = lambda u: twin.append(_rival(u, kari, "tvilling", key="double click"))
    placed = await order(uow, kari, "tvilling", key="double click")
    assert placed.order is twin[0]
    assert uow.orders.stored == twin
    assert uow.messages.published == []


async def test_an_employee_reads_only_their_own_orders(uow: FakeUnitOfWork, kari: Employee) -> None:
    ola = employee()
    uow.add_employee(ola, DEMO_POLICY)
    mine = await order(uow, kari, "nettvern")
    await order(uow, ola, "nettvern")
    assert [p.order for p in await orders_of(uow, kari.id)] == [mine.order]
    assert (await order_of(uow, kari.id, mine.order.id)).product.name == "Nettvern"
    with pytest.raises(DomainError) as not_found:
        await order_of(uow, ola.id, mine.order.id)
    assert not_found.value.code is ErrorCode.ORDER_NOT_FOUND


async def test_orders_are_read_newest_first_a_page_at_a_time(uow: FakeUnitOfWork, kari: Employee) -> None:
    placed = [await order(uow, kari, "ekstra-data-1gb") for _ in range(5)]  # all at NOW: by id then
    newest_first = sorted((p.order for p in placed), key=lambda o: o.id, reverse=True)
    first = await orders_of(uow, kari.id, limit=2)
    last = first[-1].order
    rest = await orders_of(uow, kari.id, after=Position(last.created_at, last.id))
    assert [p.order for p in first + rest] == newest_first


# ---- Applying status events ---------------------------------------------------------------------


def _snapshot(placed: PlacedOrder) -> OrderSnapshot:
    order, product = placed.order, placed.product
    return OrderSnapshot(
        order_id=order.id, company_id=order.company_id, employee_id=order.employee_id,
        employee_number="1001", msisdn=order.msisdn, product_code=product.code,
        carrier_product_code=product.carrier_product_code, kind=product.kind, action="add",
        details=order.details,
        employee_charge=EmployeeCharge(amount_ore=order.employee_charge_ore, billing=Billing(order.billing)),
        placed_at=order.created_at,
    )  # fmt: skip


async def event(uow: FakeUnitOfWork, payload: Any, *, message_id: str | None = None) -> StatusOutcome:
    return await apply_status_event(
        uow, message_id=message_id or str(uuid.uuid4()), event=payload, clock=lambda: NOW
    )


def submitted(placed: PlacedOrder, **fields: Any) -> OrderSubmitted:
    return OrderSubmitted(order_id=placed.order.id, carrier_order_id="c-1", submitted_at=NOW, **fields)


def completed(placed: PlacedOrder) -> OrderCompleted:
    return OrderCompleted(order=_snapshot(placed), carrier_order_id="c-1", completed_at=NOW)


async def test_status_only_moves_forward(uow: FakeUnitOfWork, kari: Employee) -> None:
    placed = await order(uow, kari, "nettvern")
    assert await event(uow, submitted(placed)) is StatusOutcome.APPLIED
    assert await event(uow, completed(placed)) is StatusOutcome.APPLIED
    late = await event(uow, submitted(placed))
    failed = OrderFailed(order=_snapshot(placed), carrier_order_id=None, reason="too late", failed_at=NOW)
    contradicting = await event(uow, failed)
    assert late is contradicting is StatusOutcome.UNCHANGED
    assert placed.order.status == "completed"
    assert placed.order.failure_reason is None


async def test_a_message_handled_before_has_no_effect(uow: FakeUnitOfWork, kari: Employee) -> None:
    placed = await order(uow, kari, "nettvern")
    assert await event(uow, submitted(placed), message_id="m-1") is StatusOutcome.APPLIED
    placed.order.status = "received"  # were it applied again, it would move the order
    assert await event(uow, submitted(placed), message_id="m-1") is StatusOutcome.DUPLICATE
    assert placed.order.status == "received"


async def test_an_event_for_an_unknown_order_is_not_recorded_as_handled(uow: FakeUnitOfWork) -> None:
    ghost = OrderSubmitted(order_id=uuid.uuid4(), carrier_order_id="c-1", submitted_at=NOW)
    assert await event(uow, ghost, message_id="m-1") is StatusOutcome.UNKNOWN_ORDER
    assert uow.messages.handled == set()  # its redelivery (or dead letter) is not swallowed


async def test_older_carrier_news_never_overwrites_newer(uow: FakeUnitOfWork, kari: Employee) -> None:
    placed = await order(uow, kari, "nettvern")
    expected = NOW + timedelta(days=2)

    def progressed(state: str, at: datetime) -> OrderProgressed:
        return OrderProgressed(
            order_id=placed.order.id, carrier_order_id="c-1", carrier_state=state,
            expected_completion_at=expected, progressed_at=at,
        )  # fmt: skip

    assert await event(uow, progressed("held", NOW)) is StatusOutcome.APPLIED
    assert placed.order.status == "submitted"  # with the carrier, even before its OrderSubmitted
    assert await event(uow, progressed("inProgress", NOW - timedelta(minutes=1))) is StatusOutcome.UNCHANGED
    assert (placed.order.carrier_state, placed.order.expected_completion_at) == ("held", expected)


async def test_a_failure_carries_its_reason_and_code(uow: FakeUnitOfWork, kari: Employee) -> None:
    placed = await order(uow, kari, "bedrift-total-e")
    failed = OrderFailed(
        order=_snapshot(placed), carrier_order_id="c-1", reason="Carrier rejected the order",
        reason_code=OrderFailureCode.CARRIER_REJECTED, failed_at=NOW,
    )  # fmt: skip
    await event(uow, failed)
    assert (placed.order.status, placed.order.failure_code) == ("failed", "carrier_rejected")
    assert placed.order.failure_reason == "Carrier rejected the order"
    assert kari.subscription is not None
    assert kari.subscription.plan_code == "bedrift-total-c"


async def test_completions_change_the_subscription(uow: FakeUnitOfWork, kari: Employee) -> None:
    subscription = kari.subscription
    assert subscription is not None
    for code in ("tvilling", "bedrift-total-e"):
        await event(uow, completed(await order(uow, kari, code)))
    await event(
        uow, completed(await order(uow, kari, "bestill-sim", delivery_name="K", delivery_address="S"))
    )
    assert [s.product_code for s in subscription.services] == ["hoved-sim", "tvilling"]
    assert subscription.plan_code == "bedrift-total-e"
    assert [(s.label, s.status, s.is_main) for s in subscription.sim_cards] == [
        ("Nytt SIM (sendt)", "ordered", False)
    ]


async def test_an_activated_sim_replaces_the_sim_marked_main_whatever_the_labels_say(
    uow: FakeUnitOfWork,
) -> None:
    main = SimCard(
        id=uuid.uuid4(), label="Jobbmobil", is_main=True, icc="8947000000000000003", status="active"
    )
    decoy = SimCard(id=uuid.uuid4(), label="Sim hovedkort", is_main=False, icc=None, status="ordered")
    person = employee(sims=(main, decoy))
    uow.add_employee(person, DEMO_POLICY)
    await event(uow, completed(await order(uow, person, "aktiver-nytt-sim", icc=GOOD_ICC)))
    assert (main.icc, main.status, main.label) == (GOOD_ICC, "active", "Jobbmobil")
    assert (decoy.icc, decoy.status) == (None, "ordered")


async def test_an_activated_sim_becomes_the_main_one_where_there_was_none(uow: FakeUnitOfWork) -> None:
    person = employee()
    uow.add_employee(person, DEMO_POLICY)
    await event(uow, completed(await order(uow, person, "aktiver-nytt-sim", icc=GOOD_ICC)))
    assert person.subscription is not None
    assert [(s.icc, s.is_main, s.status) for s in person.subscription.sim_cards] == [
        (GOOD_ICC, True, "active")
    ]
