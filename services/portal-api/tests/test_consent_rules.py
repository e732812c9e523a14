"""Consent to a salary deduction, ending a monthly add-on (Avslutt) and the administrator's policy
changes, through the use cases on a unit of work in memory (tests/fakes.py): no I/O."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from mport_shared.events import Billing, OrderCompleted, OrderFailed, OrderPlaced, OrderSnapshot
from portal_api.admin.policy import company_policy, replace_policy
from portal_api.catalog.policy import DEMO_POLICY, Payer, PolicyDocument, PolicyRule
from portal_api.catalog.products import CATALOG, Catalog
from portal_api.errors import DomainError, ErrorCode
from portal_api.models import Employee
from portal_api.orders.domain import DeductionAcceptance
from portal_api.orders.service import EndService, apply_status_event, end_service

from .fakes import FakeUnitOfWork
from .test_order_rules import NOW, employee, order

DIALOG = "Dette medfører lønnstrekk: 149,00 kr."


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork(Catalog(CATALOG))


@pytest.fixture
def kari(uow: FakeUnitOfWork) -> Employee:
    person = employee(services=("hoved-sim", "min-sky-25gb"))
    uow.add_employee(person, DEMO_POLICY)
    return person


def published(uow: FakeUnitOfWork) -> list[OrderSnapshot]:
    return [e.data.order for e in uow.messages.published if isinstance(e.data, OrderPlaced)]


# ---- Consent --------------------------------------------------------------------------------


async def test_a_paid_order_stores_the_consent_with_it_and_its_event_carries_it(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    accepted = DeductionAcceptance(amount_ore=14_900, text="  Dette medfører   lønnstrekk: 149,00 kr. ")
    placed = await order(uow, kari, "ekstra-data-15gb", accept=accepted)
    consent = placed.order.consent
    assert consent is not None
    assert placed.order.consent_id == consent.id
    assert (consent.employee_id, consent.amount_ore, consent.billing) == (kari.id, 14_900, "one_off")
    assert (consent.text, consent.accepted_at) == (DIALOG, NOW)  # the text as shown, cleaned
    [snapshot] = published(uow)
    assert snapshot.consent is not None
    assert (snapshot.consent.consent_id, snapshot.consent.text) == (consent.id, DIALOG)
    assert snapshot.consent.billing is Billing.ONE_OFF
    assert (snapshot.product_name, snapshot.wage_type, snapshot.action) == ("Ekstra Data 15GB", "7110", "add")
    assert (placed.order.product_name, placed.order.wage_type) == ("Ekstra Data 15GB", "7110")


async def test_a_paid_order_without_the_employees_acceptance_is_refused_and_says_the_amount(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    with pytest.raises(DomainError) as refusal:
        await order(uow, kari, "ekstra-data-15gb", accept=None)
    assert refusal.value.code is ErrorCode.DEDUCTION_NOT_ACCEPTED
    assert refusal.value.extensions == {"amount_ore": 14_900}
    assert uow.orders.stored == []
    assert uow.messages.published == []


@pytest.mark.parametrize("accepted", [14_800, 0, 29_800])
async def test_an_acceptance_of_another_amount_than_the_policys_now_is_refused(
    uow: FakeUnitOfWork, kari: Employee, accepted: int
) -> None:
    with pytest.raises(DomainError) as refusal:
        await order(
            uow, kari, "ekstra-data-15gb", accept=DeductionAcceptance(amount_ore=accepted, text=DIALOG)
        )
    assert refusal.value.code is ErrorCode.DEDUCTION_CHANGED
    assert refusal.value.extensions == {"amount_ore": 14_900}
    assert uow.orders.stored == []


async def test_a_price_changed_under_the_employee_is_refused_until_they_accept_the_new_one(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    shown = DeductionAcceptance(amount_ore=14_900, text=DIALOG)  # the page was loaded before
    uow.policies.by_company[kari.company_id] = PolicyDocument(
        rules={"ekstra_data": PolicyRule(payer=Payer.EMPLOYEE, employee_share_percent=50)}
    )
    with pytest.raises(DomainError) as refusal:
        await order(uow, kari, "ekstra-data-15gb", accept=shown)
    assert refusal.value.extensions == {"amount_ore": 7_450}
    again = DeductionAcceptance(amount_ore=7_450, text="Dette medfører lønnstrekk: 74,50 kr.")
    placed = await order(uow, kari, "ekstra-data-15gb", accept=again)
    assert placed.order.employee_charge_ore == 7_450


async def test_an_order_costing_the_employee_nothing_needs_no_consent_and_records_none(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    placed = await order(uow, kari, "nettvern", accept=None)
    assert placed.order.consent_id is None
    [snapshot] = published(uow)
    assert (snapshot.consent, snapshot.wage_type) == (None, "7120")
    zero = DeductionAcceptance(amount_ore=0, text="Ingen lønnstrekk.")
    assert (await order(uow, kari, "tvilling", accept=zero)).order.consent_id is None


async def test_a_plan_change_carries_the_monthly_difference_and_its_consent(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    accepted = DeductionAcceptance(amount_ore=10_000, text="Dette medfører lønnstrekk: 100,00 kr per måned.")
    await order(uow, kari, "bedrift-total-e", accept=accepted)
    [snapshot] = published(uow)
    assert (snapshot.action, snapshot.employee_charge.amount_ore) == ("modify", 10_000)
    assert snapshot.employee_charge.billing is Billing.MONTHLY
    assert snapshot.wage_type == "7130"
    assert snapshot.consent is not None


# ---- Ending a monthly add-on ------------------------------------------------------------------


async def end(uow: FakeUnitOfWork, who: Employee, code: str, *, key: str | None = None) -> DomainError | None:
    try:
        await end_service(
            uow,
            EndService(employee_id=who.id, product_code=code, idempotency_key=key or str(uuid.uuid4())),
            clock=lambda: NOW,
        )
    except DomainError as refusal:
        return refusal
    return None


def completed(snapshot: OrderSnapshot) -> OrderCompleted:
    return OrderCompleted(order=snapshot, carrier_order_id="CO-1", completed_at=NOW + timedelta(minutes=1))


async def test_avslutt_places_a_delete_order_for_the_add_on_naming_the_order_that_started_it(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    started = await order(uow, kari, "min-sky-10gb")  # 14,50 kr a month, accepted
    await apply_status_event(uow, message_id="m1", event=completed(published(uow)[0]))
    assert "min-sky-10gb" in {s.product_code for s in kari.subscription.services}  # type: ignore[union-attr]
    assert await end(uow, kari, "min-sky-10gb") is None
    ending = published(uow)[-1]
    assert (ending.action, ending.ends_order_id, ending.product_code) == (
        "delete",
        started.order.id,
        "min-sky-10gb",
    )
    assert (ending.employee_charge.amount_ore, ending.consent, ending.product_name) == (
        0,
        None,
        "Min Sky 10GB ekstra",
    )
    assert ending.carrier_product_code == "Sky-10GB"
    refused = await end(uow, kari, "min-sky-10gb")  # one open ending per add-on
    assert refused is not None
    assert refused.code is ErrorCode.SERVICE_ALREADY_ENDING
    with pytest.raises(DomainError) as again:
        await order(uow, kari, "min-sky-10gb")
    assert again.value.code is ErrorCode.ALREADY_ACTIVE  # still active until the ending completes


async def test_avslutt_completed_removes_the_add_on_and_frees_its_place(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    started = await order(uow, kari, "min-sky-10gb")
    await apply_status_event(uow, message_id="m1", event=completed(published(uow)[0]))
    with pytest.raises(DomainError) as active:
        await order(uow, kari, "min-sky-10gb")
    assert active.value.code is ErrorCode.ALREADY_ACTIVE
    assert await end(uow, kari, "min-sky-10gb") is None
    await apply_status_event(uow, message_id="m2", event=completed(published(uow)[-1]))
    assert "min-sky-10gb" not in {s.product_code for s in kari.subscription.services}  # type: ignore[union-attr]
    assert started.order.ended_at is not None  # it holds the place no longer
    assert (await order(uow, kari, "min-sky-10gb")).order.status == "received"  # may be ordered again


async def test_a_failed_avslutt_leaves_the_add_on_active(uow: FakeUnitOfWork, kari: Employee) -> None:
    assert await end(uow, kari, "min-sky-25gb") is None
    ending = published(uow)[-1]
    assert ending.ends_order_id is None  # on file from before orders: no order started it
    failed = OrderFailed(order=ending, carrier_order_id=None, reason="nei", failed_at=NOW)
    await apply_status_event(uow, message_id="m1", event=failed)
    assert "min-sky-25gb" in {s.product_code for s in kari.subscription.services}  # type: ignore[union-attr]
    assert await end(uow, kari, "min-sky-25gb") is None  # and may be ended again


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("nettvern", ErrorCode.SERVICE_NOT_ACTIVE),  # not active
        ("ekstra-data-15gb", ErrorCode.SERVICE_NOT_ACTIVE),  # one-off: nothing to end
        ("bedrift-total-c", ErrorCode.SERVICE_NOT_ACTIVE),  # a plan is changed, not ended
        ("nope", ErrorCode.UNKNOWN_PRODUCT),
    ],
)
async def test_only_an_active_monthly_add_on_can_be_ended(
    uow: FakeUnitOfWork, kari: Employee, code: str, why: ErrorCode
) -> None:
    refused = await end(uow, kari, code)
    assert refused is not None
    assert refused.code is why
    assert uow.orders.stored == []


async def test_avslutt_needs_self_service_and_a_repeated_key_is_the_same_ending(uow: FakeUnitOfWork) -> None:
    off = employee(self_service=False, services=("min-sky-25gb",))
    uow.add_employee(off, DEMO_POLICY)
    refused = await end(uow, off, "min-sky-25gb")
    assert refused is not None
    assert refused.code is ErrorCode.SELF_SERVICE_NOT_ACTIVATED
    on = employee(services=("min-sky-25gb",))
    uow.add_employee(on, DEMO_POLICY)
    assert await end(uow, on, "min-sky-25gb", key="k") is None
    assert await end(uow, on, "min-sky-25gb", key="k") is None  # the same order, not a refusal
    assert len(uow.orders.stored) == 1
    reused = await end(uow, on, "min-sky-25gb", key="k2")
    assert reused is not None
    assert reused.code is ErrorCode.SERVICE_ALREADY_ENDING
    with pytest.raises(DomainError) as other:
        await order(uow, on, "min-sky-25gb", key="k")  # the key ended it; adding it is another order
    assert other.value.code is ErrorCode.IDEMPOTENCY_KEY_REUSED


# ---- The administrator's policy ----------------------------------------------------------------


@pytest.fixture
def ingrid(uow: FakeUnitOfWork, kari: Employee) -> Employee:
    admin = employee()
    admin.is_admin = True
    uow.add_employee(admin)
    return admin


async def test_the_administrator_replaces_the_policy_with_one_audit_entry_of_what_changed(
    uow: FakeUnitOfWork, kari: Employee, ingrid: Employee
) -> None:
    assert await company_policy(uow, ingrid.id) == DEMO_POLICY
    new = DEMO_POLICY.model_copy(
        update={
            "rules": {
                **DEMO_POLICY.rules,
                "tvilling": PolicyRule(payer=Payer.EMPLOYEE, employee_share_ore=2_000),
            }
        }
    )
    assert await replace_policy(uow, actor_id=ingrid.id, policy=new, clock=lambda: NOW) == new
    assert await company_policy(uow, ingrid.id) == new
    [entry] = uow.audit_log.stored
    assert (entry.action, entry.actor_employee_id, entry.at) == ("policy.updated", ingrid.id, NOW)
    assert entry.before == {
        "rules": {
            "tvilling": {"payer": "employer", "employee_share_percent": None, "employee_share_ore": None}
        }
    }
    assert entry.after == {
        "rules": {
            "tvilling": {"payer": "employee", "employee_share_percent": None, "employee_share_ore": 2000}
        }
    }
    await replace_policy(uow, actor_id=ingrid.id, policy=new)  # the same again: nothing to log
    assert len(uow.audit_log.stored) == 1


async def test_an_invalid_policy_is_refused_naming_each_problem_and_changes_nothing(
    uow: FakeUnitOfWork, kari: Employee, ingrid: Employee
) -> None:
    bad = PolicyDocument.model_validate(
        {"rules": {"roaming": {"payer": "employee"}}, "plan_covered_up_to": "nettvern"}
    )
    with pytest.raises(DomainError) as refusal:
        await replace_policy(uow, actor_id=ingrid.id, policy=bad)
    assert refusal.value.code is ErrorCode.INVALID_POLICY
    assert [e["loc"] for e in refusal.value.extensions["errors"]] == [  # type: ignore[attr-defined]
        ["body", "rules", "roaming"],
        ["body", "plan_covered_up_to"],
    ]
    assert await company_policy(uow, ingrid.id) == DEMO_POLICY
    assert uow.audit_log.stored == []


async def test_an_employee_who_is_no_administrator_neither_reads_nor_changes_the_policy(
    uow: FakeUnitOfWork, kari: Employee
) -> None:
    for attempt in (
        company_policy(uow, kari.id),
        replace_policy(uow, actor_id=kari.id, policy=PolicyDocument()),
    ):
        with pytest.raises(DomainError) as refusal:
            await attempt
        assert refusal.value.code is ErrorCode.NOT_AN_ADMINISTRATOR
