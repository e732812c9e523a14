"""The provisioning use cases with an in-memory store and a scripted carrier: no I/O, milliseconds."""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from mport_shared.events import (
    Billing,
    Consent,
    EventPayload,
    OrderCompleted,
    OrderFailed,
    OrderFailureCode,
    OrderKind,
    OrderPlaced,
    OrderSubmitted,
    envelop,
)
from order_worker.adapters.carrier import (
    CarrierOrder,
    CarrierOrderRequest,
    CarrierOrderState,
    CarrierUnavailable,
    StateChangeNotice,
)
from order_worker.domain import Provisioning, Schedule
from order_worker.provisioning import OrderProvisioning
from order_worker.store import Stored

from .conftest import snapshot

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SCHEDULE = Schedule(deadlines_s={kind: 3600.0 for kind in OrderKind}, jitter=0.0)


@dataclass
class MemoryStore:
    """The store's contract in memory: dedup by order id, a version per change, events kept."""

    rows: dict[str, Stored] = field(default_factory=dict)
    published: list[EventPayload] = field(default_factory=list)

    async def exists(self, order_id: str) -> bool:
        return order_id in self.rows

    async def add(self, provisioning: Provisioning, *, traceparent: str) -> bool:
        order_id = str(provisioning.order.order_id)
        if order_id in self.rows:
            return False
        self.published.extend(provisioning.events)
        provisioning.events.clear()
        self.rows[order_id] = Stored(provisioning=copy.deepcopy(provisioning), traceparent=traceparent)
        return True

    async def get(self, order_id: str) -> Stored | None:
        return copy.deepcopy(self.rows.get(order_id))

    async def by_carrier_order_id(self, carrier_order_id: str) -> Stored | None:
        found = [s for s in self.rows.values() if s.provisioning.carrier_order_id == carrier_order_id]
        return copy.deepcopy(found[0]) if found else None

    async def save(self, stored: Stored) -> bool:
        order_id = str(stored.provisioning.order.order_id)
        if self.rows[order_id].provisioning.version != stored.provisioning.version:
            return False
        self.published.extend(stored.provisioning.events)
        stored.provisioning.events.clear()
        stored.provisioning.version += 1
        self.rows[order_id] = copy.deepcopy(stored)
        return True


@dataclass
class ScriptedCarrier:
    """A carrier whose orders are in the state a test sets; it records every call."""

    state: CarrierOrderState = CarrierOrderState.ACKNOWLEDGED
    down: bool = False
    calls: list[str] = field(default_factory=list)
    orders: dict[str, str] = field(default_factory=dict)  # carrier id -> our order id

    async def submit(self, request: CarrierOrderRequest) -> CarrierOrder:
        self.calls.append("submit")
        if self.down:
            raise CarrierUnavailable("503")
        carrier_id = next(
            (c for c, o in self.orders.items() if o == request.order_id), f"c-{len(self.orders)}"
        )
        self.orders[carrier_id] = request.order_id
        return CarrierOrder(
            id=carrier_id, external_id=request.order_id, state=self.state, failure_reason=None
        )

    async def get(self, carrier_order_id: str) -> CarrierOrder:
        self.calls.append("get")
        if self.down:
            raise CarrierUnavailable("503")
        return CarrierOrder(
            id=carrier_order_id,
            external_id=self.orders[carrier_order_id],
            state=self.state,
            failure_reason=None,
        )

    async def register_listener(self, callback: str) -> str:
        return "hub"

    async def unregister_listener(self, hub_id: str) -> None:
        return None


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


def placed(*, placed_at: datetime = NOW) -> OrderPlaced:
    return OrderPlaced(order=snapshot(placed_at=placed_at))


def worker(carrier: ScriptedCarrier, store: MemoryStore, clock: Clock | None = None) -> OrderProvisioning:
    return OrderProvisioning(
        store=store,
        carrier=carrier,
        schedule=SCHEDULE,
        first_look_s=0,
        clock=clock or Clock(),
        rng=random.Random(1),
    )


async def deliver(provisioning: OrderProvisioning, event: OrderPlaced) -> None:
    await provisioning.on_order_placed(envelop(event, source="/t", correlation_id=str(event.order.order_id)))


def notice(carrier_id: str, order_id: uuid.UUID, state: CarrierOrderState) -> StateChangeNotice:
    return StateChangeNotice(carrier_order_id=carrier_id, external_ids=(str(order_id),), claimed_state=state)


async def test_an_instant_carrier_gives_the_outcome_with_one_call() -> None:
    carrier, store = ScriptedCarrier(state=CarrierOrderState.COMPLETED), MemoryStore()
    await deliver(worker(carrier, store), placed())
    assert carrier.calls == ["submit"]
    assert [type(e) for e in store.published] == [OrderCompleted]


async def test_a_redelivered_order_placed_never_reaches_the_carrier_twice() -> None:
    carrier, store = ScriptedCarrier(), MemoryStore()
    provisioning, event = worker(carrier, store), placed()
    await deliver(provisioning, event)
    await deliver(provisioning, event)
    assert carrier.calls == ["submit"]
    assert [type(e) for e in store.published] == [OrderSubmitted]


async def test_an_order_past_its_deadline_on_arrival_fails_without_reaching_the_carrier() -> None:
    carrier, store = ScriptedCarrier(), MemoryStore()
    await deliver(worker(carrier, store), placed(placed_at=NOW - timedelta(days=2)))
    assert carrier.calls == []
    [failed] = store.published
    assert isinstance(failed, OrderFailed)
    assert failed.reason_code is OrderFailureCode.CARRIER_UNREACHABLE


async def test_a_carrier_away_leaves_the_order_to_submit_and_its_check_submits_it() -> None:
    carrier, store, clock = ScriptedCarrier(down=True), MemoryStore(), Clock()
    provisioning, event = worker(carrier, store, clock), placed()
    await deliver(provisioning, event)  # no exception: the message is acked
    assert store.published == []
    carrier.down = False
    clock.now = NOW + timedelta(seconds=2)
    stored = await store.get(str(event.order.order_id))
    assert stored is not None
    await provisioning.check(stored)
    assert carrier.calls == ["submit", "submit"]
    assert [type(e) for e in store.published] == [OrderSubmitted]


async def test_a_notification_is_believed_only_as_the_carrier_confirms_it() -> None:
    carrier, store = ScriptedCarrier(), MemoryStore()
    provisioning, event = worker(carrier, store), placed()
    await deliver(provisioning, event)
    [carrier_id] = carrier.orders
    # A forged "completed": the carrier says it is still in progress.
    carrier.state = CarrierOrderState.IN_PROGRESS
    await provisioning.on_notice(notice(carrier_id, event.order.order_id, CarrierOrderState.COMPLETED))
    assert [type(e) for e in store.published] == [OrderSubmitted]
    # The real one.
    carrier.state = CarrierOrderState.COMPLETED
    await provisioning.on_notice(notice(carrier_id, event.order.order_id, CarrierOrderState.COMPLETED))
    assert [type(e) for e in store.published] == [OrderSubmitted, OrderCompleted]
    # Late repeats cost no carrier call.
    calls = len(carrier.calls)
    await provisioning.on_notice(notice(carrier_id, event.order.order_id, CarrierOrderState.COMPLETED))
    assert len(carrier.calls) == calls
    assert len(store.published) == 2


async def test_a_notification_naming_a_carrier_order_that_is_not_this_orders_changes_nothing() -> None:
    carrier, store = ScriptedCarrier(down=True), MemoryStore()
    provisioning, mine = worker(carrier, store), placed()
    await deliver(provisioning, mine)  # not taken yet: no carrier order recorded for it
    carrier.down = False
    carrier.orders["x-1"] = "someone-elses-order"
    carrier.state = CarrierOrderState.COMPLETED
    # Claims to be about my order (its externalId), but the carrier order is another's.
    await provisioning.on_notice(notice("x-1", mine.order.order_id, CarrierOrderState.COMPLETED))
    assert store.published == []
    stored = await store.get(str(mine.order.order_id))
    assert stored is not None
    assert stored.provisioning.carrier_order_id is None


async def test_a_notification_of_no_visible_change_asks_the_carrier_nothing() -> None:
    carrier, store = ScriptedCarrier(), MemoryStore()
    provisioning, event = worker(carrier, store), placed()
    await deliver(provisioning, event)
    [carrier_id] = carrier.orders
    await provisioning.on_notice(notice(carrier_id, event.order.order_id, CarrierOrderState.IN_PROGRESS))
    assert carrier.calls == ["submit"]


async def test_a_notification_before_the_order_is_recorded_is_handled_once_it_is() -> None:
    carrier, store = ScriptedCarrier(), MemoryStore()
    provisioning, event = worker(carrier, store), placed()
    ready: list[StateChangeNotice] = []
    provisioning.on_notice_ready = ready.append
    real_submit = carrier.submit

    async def submit_and_notify(request: CarrierOrderRequest) -> CarrierOrder:
        answer = await real_submit(request)
        # The carrier posts its notification before its answer to us arrives.
        await provisioning.on_notice(notice(answer.id, event.order.order_id, CarrierOrderState.COMPLETED))
        return answer

    carrier.submit = submit_and_notify  # type: ignore[method-assign]
    await deliver(provisioning, event)
    assert [n.carrier_order_id for n in ready] == list(carrier.orders)
    assert carrier.calls == ["submit"]  # nothing was read before the order was recorded


def _payroll_snapshot(action: str) -> OrderPlaced:
    """An order with what the payroll-worker reads: name, wage type, consent, what it ends."""
    base = snapshot()
    consent = Consent(
        consent_id=uuid.uuid4(),
        employee_id=base.employee_id,
        accepted_at=NOW,
        amount_ore=6_900,
        billing=Billing.MONTHLY,
        text="Dette medfører lønnstrekk: 69,00 kr per måned.",
    )
    return OrderPlaced(
        order=base.model_copy(
            update={
                "action": action,
                "product_name": "Tvilling",
                "wage_type": "7120",
                "consent": consent if action == "add" else None,
                "ends_order_id": uuid.uuid4() if action == "delete" else None,
            }
        )
    )


async def test_ending_a_service_reaches_the_carrier_as_a_delete_and_completes_with_its_snapshot() -> None:
    carrier, store = RecordingCarrier(state=CarrierOrderState.COMPLETED), MemoryStore()
    event = _payroll_snapshot("delete")
    await deliver(worker(carrier, store), event)
    assert [r.action for r in carrier.requests] == ["delete"]
    [completed] = store.published
    assert isinstance(completed, OrderCompleted)
    assert completed.order == event.order  # ends_order_id, product_name and wage_type kept


async def test_the_outcome_events_carry_the_name_wage_type_and_consent_as_placed() -> None:
    carrier, store = RecordingCarrier(state=CarrierOrderState.COMPLETED), MemoryStore()
    event = _payroll_snapshot("add")
    await deliver(worker(carrier, store), event)
    [completed] = store.published
    assert isinstance(completed, OrderCompleted)
    assert (completed.order.consent, completed.order.product_name, completed.order.wage_type) == (
        event.order.consent,
        "Tvilling",
        "7120",
    )
    failing, failed_store = RecordingCarrier(state=CarrierOrderState.FAILED), MemoryStore()
    await deliver(worker(failing, failed_store), event)
    [failed] = failed_store.published
    assert isinstance(failed, OrderFailed)
    assert failed.order.consent == event.order.consent  # the consent stays; the charge is zeroed
    assert failed.order.employee_charge.amount_ore == 0


@dataclass
class RecordingCarrier(ScriptedCarrier):
    requests: list[CarrierOrderRequest] = field(default_factory=list)

    async def submit(self, request: CarrierOrderRequest) -> CarrierOrder:
        self.requests.append(request)
        return await super().submit(request)
