"""The administrator's rules through the use cases, on a unit of work in memory (tests/fakes.py):
correcting a number, switching self-service, unlocking, the audit entry of each change, and who may
do it. The same on PostgreSQL through the API: test_admin_api.py."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from portal_api.admin.domain import ChangeEmployee, normalize_msisdn
from portal_api.admin.service import audit_log_page, change_employee, list_staff
from portal_api.catalog.products import CATALOG, Catalog
from portal_api.errors import DomainError, ErrorCode, NotSignedIn
from portal_api.models import Company, Employee, Order, Subscription
from portal_api.verification_rules import MAX_CONSECUTIVE_VERIFICATION_FAILURES, is_locked

from .fakes import FakeUnitOfWork

DEMO = uuid.UUID("00000000-0000-4000-8000-00000000c0de")
FJORD = uuid.UUID("00000000-0000-4000-8000-00000000f00d")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
VERIFIED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a unit test of the administrator's rules tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def person(
    name: str,
    *,
    company: uuid.UUID = DEMO,
    admin: bool = False,
    msisdn: str | None = None,
    verified: bool = True,
    failures: int = 0,
) -> Employee:
    employee = Employee(
        id=uuid.uuid4(),
        company_id=company,
        email=f"{name.split()[0].lower()}@example.no",
        name=name,
        employee_number=str(1000 + len(name)),
        is_admin=admin,
        self_service_allowed=True,
        self_service_active=verified and msisdn is not None,
        phone_verified_at=VERIFIED if verified and msisdn is not None else None,
        verification_failures=failures,
        company=Company(id=company, name="Demo Bedrift AS" if company == DEMO else "Fjord Logistikk AS"),
    )
    if msisdn is not None:
        employee.subscription = Subscription(
            id=uuid.uuid4(), employee_id=employee.id, msisdn=msisdn, plan_code="bedrift-total-c"
        )
    return employee


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork(Catalog(CATALOG))


@pytest.fixture
def people(uow: FakeUnitOfWork) -> dict[str, Employee]:
    cast = {
        "ingrid": person("Ingrid Berg", admin=True),
        "kari": person("Kari Nordmann", msisdn="4791234567"),
        "hakon": person("Håkon Hafell", msisdn="4748123456", verified=False),
        "per": person("Per Fjell", company=FJORD, admin=True),
        "siri": person("Siri Dahl", company=FJORD, msisdn="4790011223"),
    }
    for employee in cast.values():
        uow.add_employee(employee)
    return cast


async def change(uow: FakeUnitOfWork, actor: Employee, subject: Employee | uuid.UUID, **fields: Any) -> Any:
    subject_id = subject if isinstance(subject, uuid.UUID) else subject.id
    return await change_employee(
        uow, actor_id=actor.id, employee_id=subject_id, change=ChangeEmployee(**fields), clock=lambda: NOW
    )


async def refusal(
    uow: FakeUnitOfWork, actor: Employee, subject: Employee | uuid.UUID, **fields: Any
) -> ErrorCode:
    with pytest.raises(DomainError) as refused:
        await change(uow, actor, subject, **fields)
    assert uow.audit_log.stored == []
    return refused.value.code


# ---- the number --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("4799887766", "4799887766"),
        ("+47 998 87 766", "4799887766"),
        ("0047 99887766", "4799887766"),
        ("99887766", "4799887766"),  # 8 digits: a Norwegian number
        ("+46 70 123 45 67", "46701234567"),
        ("47-99.88(77)66", "4799887766"),
    ],
)
def test_a_number_is_stored_as_e164_digits(typed: str, stored: str) -> None:
    assert normalize_msisdn(typed) == stored


@pytest.mark.parametrize(
    "typed",
    ["", "abc", "4799 88 77 6x", "1234567", "0799887766", "+" + "4" * 16, "٤٧٩٩٨٨٧٧٦٦", "47 99 88\n77 66"],
)
def test_a_number_that_is_not_one_is_refused(typed: str) -> None:
    with pytest.raises(DomainError) as refused:
        normalize_msisdn(typed)
    assert refused.value.code is ErrorCode.INVALID_MSISDN


async def test_correcting_a_number_resets_the_verification_ends_the_sessions_and_is_logged(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    kari, ingrid = people["kari"], people["ingrid"]
    uow.staff.sessions[kari.id] = 2
    outcome = await change(uow, ingrid, kari, msisdn="+47 998 87 766")

    assert kari.subscription is not None
    assert kari.subscription.msisdn == "4799887766"
    assert (kari.phone_verified_at, kari.self_service_active, kari.self_service_allowed) == (
        None,
        False,
        True,
    )
    assert outcome.sessions_ended == 2
    assert uow.staff.ended_sessions == {kari.id: 2}
    [entry] = uow.audit_log.stored
    assert (entry.company_id, entry.actor_employee_id, entry.subject_employee_id, entry.at) == (
        DEMO,
        ingrid.id,
        kari.id,
        NOW,
    )
    assert entry.action == "employee.updated"
    assert entry.before == {
        "msisdn": "4791234567",
        "self_service_active": True,
        "phone_verified_at": VERIFIED.isoformat(),
    }
    assert entry.after == {"msisdn": "4799887766", "self_service_active": False, "phone_verified_at": None}
    assert uow.commits == 1


async def test_the_same_number_again_changes_and_logs_nothing(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    kari = people["kari"]
    uow.staff.sessions[kari.id] = 1
    outcome = await change(uow, people["ingrid"], kari, msisdn="+47 912 34 567")
    assert outcome.entry is None
    assert outcome.sessions_ended == 0
    assert kari.phone_verified_at == VERIFIED
    assert kari.self_service_active
    assert uow.audit_log.stored == []
    assert uow.commits == 0


async def test_another_employees_number_is_refused_even_of_another_company(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    kari = people["kari"]
    assert await refusal(uow, people["ingrid"], kari, msisdn="4748123456") is ErrorCode.MSISDN_TAKEN
    assert await refusal(uow, people["ingrid"], kari, msisdn="4790011223") is ErrorCode.MSISDN_TAKEN
    assert kari.subscription is not None
    assert kari.subscription.msisdn == "4791234567"
    assert kari.phone_verified_at == VERIFIED


async def test_a_number_taken_between_the_check_and_the_write_is_the_same_refusal(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    uow.staff.taken_at_write.add("4799887766")
    assert await refusal(uow, people["ingrid"], people["kari"], msisdn="4799887766") is ErrorCode.MSISDN_TAKEN
    assert people["kari"].self_service_active


async def test_no_number_to_correct_without_a_subscription(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    ingrid = people["ingrid"]
    assert await refusal(uow, ingrid, ingrid, msisdn="4799887766") is ErrorCode.EMPLOYEE_HAS_NO_SUBSCRIPTION


async def test_open_orders_on_the_old_number_refuse_the_correction(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    kari = people["kari"]
    assert kari.subscription is not None
    uow.orders.stored.append(
        Order(id=uuid.uuid4(), subscription_id=kari.subscription.id, employee_id=kari.id, status="submitted")
    )
    assert await refusal(uow, people["ingrid"], kari, msisdn="4799887766") is ErrorCode.OPEN_ORDERS_ON_NUMBER
    assert kari.subscription.msisdn == "4791234567"  # the write was rolled back
    assert kari.self_service_active
    assert uow.staff.ended_sessions == {}
    uow.orders.stored[0].status = "completed"
    await change(uow, people["ingrid"], kari, msisdn="4799887766")
    assert kari.subscription.msisdn == "4799887766"


# ---- self-service and the lock ------------------------------------------------------------------


async def test_switching_self_service_off_and_on_again(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    kari, ingrid = people["kari"], people["ingrid"]
    await change(uow, ingrid, kari, self_service_allowed=False)
    assert (kari.self_service_allowed, kari.self_service_active) == (False, False)
    assert kari.phone_verified_at == VERIFIED  # the confirmation stands
    await change(uow, ingrid, kari, self_service_allowed=True)
    assert (kari.self_service_allowed, kari.self_service_active) == (True, True)
    off, on = uow.audit_log.stored
    assert (off.before, off.after) == (
        {"self_service_allowed": True, "self_service_active": True},
        {"self_service_allowed": False, "self_service_active": False},
    )
    assert (on.before, on.after) == (off.after, off.before)
    assert uow.staff.ended_sessions == {}


async def test_switching_on_for_an_unconfirmed_number_allows_but_does_not_activate(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    hakon, ingrid = people["hakon"], people["ingrid"]
    await change(uow, ingrid, hakon, self_service_allowed=False)
    await change(uow, ingrid, hakon, self_service_allowed=True)
    assert (hakon.self_service_allowed, hakon.self_service_active) == (True, False)
    assert [e.after for e in uow.audit_log.stored] == [
        {"self_service_allowed": False},
        {"self_service_allowed": True},
    ]


async def test_a_new_number_with_the_switch_on_is_still_not_active(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    kari = people["kari"]
    await change(uow, people["ingrid"], kari, msisdn="4799887766", self_service_allowed=True)
    assert (kari.self_service_allowed, kari.self_service_active, kari.phone_verified_at) == (
        True,
        False,
        None,
    )
    assert len(uow.audit_log.stored) == 1  # one PATCH, one entry


async def test_unlocking_sets_the_failures_back_to_zero(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    hakon = people["hakon"]
    hakon.verification_failures = MAX_CONSECUTIVE_VERIFICATION_FAILURES
    assert is_locked(hakon.verification_failures)
    assert not is_locked(MAX_CONSECUTIVE_VERIFICATION_FAILURES - 1)
    await change(uow, people["ingrid"], hakon, unlock=True)
    assert hakon.verification_failures == 0
    [entry] = uow.audit_log.stored
    assert (entry.before, entry.after) == (
        {"verification_failures": MAX_CONSECUTIVE_VERIFICATION_FAILURES},
        {"verification_failures": 0},
    )


# ---- who may ------------------------------------------------------------------------------------


async def test_only_an_administrator_may_change_anyone(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    kari, hakon = people["kari"], people["hakon"]
    assert await refusal(uow, kari, hakon, self_service_allowed=False) is ErrorCode.NOT_AN_ADMINISTRATOR
    assert await refusal(uow, kari, kari, msisdn="4799887766") is ErrorCode.NOT_AN_ADMINISTRATOR
    assert hakon.self_service_allowed
    assert kari.phone_verified_at == VERIFIED
    with pytest.raises(DomainError) as refused:
        await list_staff(uow, kari.id, after=None, limit=10)
    assert refused.value.code is ErrorCode.NOT_AN_ADMINISTRATOR
    with pytest.raises(DomainError):
        await audit_log_page(uow, kari.id, before_id=None, limit=10)


async def test_another_companys_employee_is_not_found_like_one_that_does_not_exist(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    siri = people["siri"]
    assert (
        await refusal(uow, people["ingrid"], siri, self_service_allowed=False) is ErrorCode.EMPLOYEE_NOT_FOUND
    )
    assert await refusal(uow, people["ingrid"], uuid.uuid4(), unlock=True) is ErrorCode.EMPLOYEE_NOT_FOUND
    assert siri.self_service_allowed


async def test_nobody_signed_in_is_not_signed_in(uow: FakeUnitOfWork, people: dict[str, Employee]) -> None:
    ghost = person("Nobody", admin=True)
    with pytest.raises(NotSignedIn):
        await change(uow, ghost, people["kari"], unlock=True)


async def test_each_company_lists_and_logs_only_its_own(
    uow: FakeUnitOfWork, people: dict[str, Employee]
) -> None:
    await change(uow, people["ingrid"], people["kari"], self_service_allowed=False)
    await change(uow, people["per"], people["siri"], self_service_allowed=False)
    _, demo = await list_staff(uow, people["ingrid"].id, after=None, limit=10)
    assert [m.employee.name for m in demo] == ["Håkon Hafell", "Ingrid Berg", "Kari Nordmann"]
    _, fjord_log = await audit_log_page(uow, people["per"].id, before_id=None, limit=10)
    assert [(e.actor_name, e.subject_name) for e in fjord_log] == [("Per Fjell", "Siri Dahl")]
