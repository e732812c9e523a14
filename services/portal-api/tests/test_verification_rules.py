"""The one-time code rules through the use cases, on a unit of work in memory (tests/fakes.py) and
a clock the test moves: no database, no broker, no I/O. The same on PostgreSQL and RabbitMQ:
test_verifications_api.py."""

from __future__ import annotations

import hmac
import secrets
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mport_shared.events import (
    VerificationCodeSent,
    VerificationDelivered,
    VerificationDeliveryFailed,
    VerificationFailureCode,
    VerificationRequested,
)
from portal_api.catalog.products import CATALOG, Catalog
from portal_api.errors import DomainError, ErrorCode
from portal_api.models import Company, Employee, Subscription
from portal_api.problems import PROBLEM_TYPES
from portal_api.settings import PortalSettings
from portal_api.verifications import domain
from portal_api.verifications.domain import CodeRules, code_hmac, new_code
from portal_api.verifications.service import (
    CodeKeeper,
    DeliveryOutcome,
    apply_delivery_event,
    confirm_code,
    page_state,
    request_code,
)

from .conftest import FakeClock
from .fakes import FakeUnitOfWork

COMPANY = uuid.UUID("00000000-0000-4000-8000-00000000c0de")
SECRET = b"k" * 32
HAKON_MSISDN = "4748123456"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a unit test of the verification rules tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def person(
    *, msisdn: str | None = HAKON_MSISDN, allowed: bool = True, company: uuid.UUID = COMPANY
) -> Employee:
    employee = Employee(
        id=uuid.uuid4(),
        company_id=company,
        email=f"{uuid.uuid4().hex[:8]}@demo.no",
        name="Håkon Hafell",
        employee_number="1002",
        is_admin=False,
        self_service_active=False,
        self_service_allowed=allowed,
        phone_verified_at=None,
        verification_failures=0,
        company=Company(id=company, name="Demo Bedrift AS"),
    )
    if msisdn is not None:
        employee.subscription = Subscription(
            id=uuid.uuid4(), employee_id=employee.id, msisdn=msisdn, plan_code="bedrift-total-c"
        )
    return employee


class Codes:
    """The codes the keeper hands out, in order (a test knows what it "received" by SMS)."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self._next = 314159

    def __call__(self) -> str:
        code = f"{self._next:06d}"
        self._next += 111111
        self._next %= 1_000_000
        self.made.append(code)
        return code

    @property
    def last(self) -> str:
        return self.made[-1]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def codes() -> Codes:
    return Codes()


@pytest.fixture
def rules() -> CodeRules:
    return CodeRules()


@pytest.fixture
def keeper(clock: FakeClock, codes: Codes, rules: CodeRules) -> CodeKeeper:
    return CodeKeeper(secret=SECRET, rules=rules, clock=clock, make_code=codes)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork(Catalog(CATALOG))


@pytest.fixture
def hakon(uow: FakeUnitOfWork) -> Employee:
    employee = person()
    uow.add_employee(employee)
    return employee


async def ask(uow: FakeUnitOfWork, who: Employee, keeper: CodeKeeper) -> uuid.UUID:
    return (await request_code(uow, employee_id=who.id, keeper=keeper)).id


async def refused_ask(uow: FakeUnitOfWork, who: Employee, keeper: CodeKeeper) -> DomainError:
    with pytest.raises(DomainError) as refusal:
        await request_code(uow, employee_id=who.id, keeper=keeper)
    return refusal.value


async def type_code(
    uow: FakeUnitOfWork, who: Employee, keeper: CodeKeeper, verification_id: uuid.UUID, code: str
) -> DomainError | None:
    try:
        await confirm_code(
            uow, employee_id=who.id, verification_id=verification_id, typed=code, keeper=keeper
        )
    except DomainError as refusal:
        return refusal
    return None


def code_of(answer: DomainError | None) -> ErrorCode | None:
    return answer.code if answer is not None else None


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# ---- The code -----------------------------------------------------------------------------------


def test_a_code_is_six_digits_from_the_csprng_with_leading_zeros_kept() -> None:
    assert new_code(lambda n: 42) == "000042"
    assert new_code(lambda n: n - 1) == "999999"
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190  # random, not a counter
    assert domain.new_code.__defaults__ == (secrets.randbelow,)


async def test_only_the_codes_hmac_is_stored_bound_to_its_verification(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    [stored] = uow.verifications.stored
    assert (
        stored.code_hmac == hmac.new(SECRET, verification_id.bytes + codes.last.encode(), "sha256").digest()
    )
    assert codes.last.encode() not in stored.code_hmac
    assert codes.last not in repr(vars(stored))
    # The same code for another verification is another HMAC: the code is bound to the request.
    assert code_hmac(SECRET, uuid.uuid4(), codes.last) != stored.code_hmac


async def test_the_code_is_compared_in_constant_time(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    verification_id = await ask(uow, hakon, keeper)
    assert await type_code(uow, hakon, keeper, verification_id, wrong(codes.last)) is not None
    assert await type_code(uow, hakon, keeper, verification_id, "not a code") is not None
    assert await type_code(uow, hakon, keeper, verification_id, codes.last) is None
    assert len(calls) == 3


async def test_the_event_carries_the_code_to_the_registered_number_and_expires_with_it(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes, clock: FakeClock
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    [envelope] = uow.messages.published
    event = envelope.data
    assert isinstance(event, VerificationRequested)
    assert event.verification_id == verification_id
    assert event.msisdn == HAKON_MSISDN
    assert event.employee_id == hakon.id
    assert event.company_id == COMPANY
    assert event.code == codes.last
    assert codes.last not in repr(event)  # repr=False: a logged event does not show it
    assert event.expires_at == clock.now + timedelta(minutes=10)
    assert uow.messages.expiry[envelope.id] == event.expires_at  # the message's TTL
    assert uow.commits == 1


# ---- Typing it ----------------------------------------------------------------------------------


async def test_the_right_code_confirms_the_number_and_turns_self_service_on(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes, clock: FakeClock
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    hakon.verification_failures = 7
    clock.advance(minutes=3)
    confirmed = await confirm_code(
        uow, employee_id=hakon.id, verification_id=verification_id, typed=codes.last, keeper=keeper
    )
    assert confirmed.self_service_active is True
    assert hakon.self_service_active is True
    assert hakon.phone_verified_at == clock.now
    assert hakon.verification_failures == 0  # a right code resets the count
    assert confirmed.verification.state == "confirmed"
    assert confirmed.verification.confirmed_at == clock.now


async def test_self_service_stays_off_when_the_administrator_switched_it_off(
    uow: FakeUnitOfWork, keeper: CodeKeeper, codes: Codes
) -> None:
    employee = person(allowed=False)
    uow.add_employee(employee)
    verification_id = await ask(uow, employee, keeper)
    confirmed = await confirm_code(
        uow, employee_id=employee.id, verification_id=verification_id, typed=codes.last, keeper=keeper
    )
    assert confirmed.self_service_active is False
    assert employee.phone_verified_at is not None


async def test_a_code_works_once(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    assert await type_code(uow, hakon, keeper, verification_id, codes.last) is None
    again = await type_code(uow, hakon, keeper, verification_id, codes.last)
    assert code_of(again) is ErrorCode.VERIFICATION_CODE_USED


async def test_five_wrong_tries_kill_the_code(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    answers = [await type_code(uow, hakon, keeper, verification_id, wrong(codes.last)) for _ in range(5)]
    assert [a.code if a else None for a in answers] == [ErrorCode.VERIFICATION_WRONG_CODE] * 4 + [
        ErrorCode.VERIFICATION_TOO_MANY_TRIES
    ]
    assert [a.extensions.get("tries_left") if a else None for a in answers] == [4, 3, 2, 1, 0]
    assert answers[4] is not None
    assert answers[4].retry_after_s == 1  # a new code may be asked for at once
    # Dead: even the right code no longer works.
    after = await type_code(uow, hakon, keeper, verification_id, codes.last)
    assert code_of(after) is ErrorCode.VERIFICATION_CODE_DEAD
    assert hakon.phone_verified_at is None
    assert hakon.verification_failures == 5


async def test_a_code_expires_after_the_ttl(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes, clock: FakeClock
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    clock.advance(minutes=10)
    late = await type_code(uow, hakon, keeper, verification_id, codes.last)
    assert code_of(late) is ErrorCode.VERIFICATION_CODE_EXPIRED
    assert hakon.phone_verified_at is None


async def test_the_ttl_is_a_setting(
    uow: FakeUnitOfWork, hakon: Employee, clock: FakeClock, codes: Codes
) -> None:
    rules = PortalSettings(database_url="sqlite://", VERIFICATION_CODE_TTL_S=120).code_rules
    keeper = CodeKeeper(secret=SECRET, rules=rules, clock=clock, make_code=codes)
    verification_id = await ask(uow, hakon, keeper)
    clock.advance(seconds=121)
    late = await type_code(uow, hakon, keeper, verification_id, codes.last)
    assert code_of(late) is ErrorCode.VERIFICATION_CODE_EXPIRED


async def test_a_new_code_kills_the_old_one(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes
) -> None:
    first = await ask(uow, hakon, keeper)
    first_code = codes.last
    second = await ask(uow, hakon, keeper)
    old = await type_code(uow, hakon, keeper, first, first_code)
    assert code_of(old) is ErrorCode.VERIFICATION_CODE_REPLACED
    assert [v.state for v in uow.verifications.stored] == ["replaced", "pending"]
    assert await type_code(uow, hakon, keeper, second, codes.last) is None


async def test_a_code_sent_to_a_number_since_changed_is_refused(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    assert hakon.subscription is not None
    hakon.subscription.msisdn = "4799999999"  # the administrator corrected the number
    answer = await type_code(uow, hakon, keeper, verification_id, codes.last)
    assert code_of(answer) is ErrorCode.VERIFICATION_NUMBER_CHANGED
    assert answer is not None
    assert PROBLEM_TYPES[answer.code].status == 410
    assert hakon.phone_verified_at is None


async def test_the_page_forgets_a_code_sent_to_a_number_since_changed(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper
) -> None:
    # After the administrator corrects the number, the page offers a code to the new number
    # instead of showing the old number's code and its SMS as if they were his.
    await ask(uow, hakon, keeper)
    assert (await page_state(uow, hakon, keeper)).open_code is not None
    assert hakon.subscription is not None
    hakon.subscription.msisdn = "4799999999"
    state = await page_state(uow, hakon, keeper)
    assert state.open_code is None
    assert state.latest is None
    assert state.refusal is None  # a new code to the new number may be sent at once


async def test_another_employees_verification_is_not_found(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    other = person(msisdn="4790000001")
    uow.add_employee(other)
    answer = await type_code(uow, other, keeper, verification_id, codes.last)
    assert code_of(answer) is ErrorCode.VERIFICATION_NOT_FOUND
    assert uow.verifications.stored[0].attempts == 0  # and it did not count against the code


async def test_100_wrong_codes_in_a_row_lock_until_the_administrator_unlocks(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes, clock: FakeClock
) -> None:
    hakon.verification_failures = 98  # over many codes before (the count spans them all)
    verification_id = await ask(uow, hakon, keeper)
    first = await type_code(uow, hakon, keeper, verification_id, wrong(codes.last))
    assert code_of(first) is ErrorCode.VERIFICATION_WRONG_CODE
    hundredth = await type_code(uow, hakon, keeper, verification_id, wrong(codes.last))
    assert code_of(hundredth) is ErrorCode.VERIFICATION_LOCKED
    assert hakon.verification_failures == 100
    # Locked: the right code does not help, and no new code is sent, however long one waits.
    right = await type_code(uow, hakon, keeper, verification_id, codes.last)
    assert code_of(right) is ErrorCode.VERIFICATION_LOCKED
    clock.advance(days=3)
    assert (await refused_ask(uow, hakon, keeper)).code is ErrorCode.VERIFICATION_LOCKED
    # The administrator unlocks (employees.verification_failures = 0): codes work again.
    hakon.verification_failures = 0
    again = await ask(uow, hakon, keeper)
    assert await type_code(uow, hakon, keeper, again, codes.last) is None


# ---- Asking for codes ---------------------------------------------------------------------------


async def test_three_codes_per_number_in_15_minutes_then_429_with_retry_after(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, clock: FakeClock
) -> None:
    for _ in range(3):
        await ask(uow, hakon, keeper)
        clock.advance(minutes=1)
    refusal = await refused_ask(uow, hakon, keeper)
    assert refusal.code is ErrorCode.VERIFICATION_TOO_MANY_CODES
    # The first code leaves the 15-minute window 15 - 3 minutes from now.
    assert refusal.retry_after_s == 12 * 60
    clock.advance(seconds=12 * 60 - 1)
    assert (await refused_ask(uow, hakon, keeper)).retry_after_s == 1
    clock.advance(seconds=1)
    await ask(uow, hakon, keeper)


async def test_ten_codes_per_number_a_day(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, clock: FakeClock
) -> None:
    start = clock.now
    for _ in range(10):
        await ask(uow, hakon, keeper)
        clock.advance(minutes=16)  # never three within 15 minutes
    refusal = await refused_ask(uow, hakon, keeper)
    assert refusal.code is ErrorCode.VERIFICATION_TOO_MANY_CODES
    assert refusal.retry_after_s == int((start + timedelta(days=1) - clock.now).total_seconds())
    clock.now = start + timedelta(days=1, seconds=1)
    await ask(uow, hakon, keeper)


async def test_the_limit_is_per_number_not_per_employee(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, clock: FakeClock
) -> None:
    for _ in range(3):
        await ask(uow, hakon, keeper)
    assert hakon.subscription is not None
    hakon.subscription.msisdn = "4790000002"  # corrected by the administrator
    await ask(uow, hakon, keeper)


async def test_numbers_outside_the_allowed_countries_are_refused_and_recorded(
    uow: FakeUnitOfWork, keeper: CodeKeeper
) -> None:
    swede = person(msisdn="46701234567")
    uow.add_employee(swede)
    refusal = await refused_ask(uow, swede, keeper)
    assert refusal.code is ErrorCode.SMS_COUNTRY_NOT_ALLOWED
    assert uow.messages.published == []
    assert uow.verifications.stored == []
    [recorded] = uow.verifications.refusals
    assert (recorded.reason, recorded.employee_id, recorded.msisdn) == (
        "country_not_allowed",
        swede.id,
        "46701234567",
    )


async def test_the_allowed_prefixes_are_a_setting(
    uow: FakeUnitOfWork, clock: FakeClock, codes: Codes
) -> None:
    rules = PortalSettings(database_url="sqlite://", SMS_ALLOWED_PREFIXES="47, +46").code_rules
    assert rules.allowed_prefixes == ("47", "46")
    keeper = CodeKeeper(secret=SECRET, rules=rules, clock=clock, make_code=codes)
    swede = person(msisdn="46701234567")
    uow.add_employee(swede)
    await ask(uow, swede, keeper)
    with pytest.raises(ValueError, match="country prefixes"):
        PortalSettings(database_url="sqlite://", SMS_ALLOWED_PREFIXES="norway")


async def test_each_company_has_a_daily_budget_and_the_refusals_are_recorded(
    uow: FakeUnitOfWork, clock: FakeClock, codes: Codes
) -> None:
    keeper = CodeKeeper(
        secret=SECRET, rules=CodeRules(daily_budget_per_company=2), clock=clock, make_code=codes
    )
    people = [person(msisdn=f"479000000{i}") for i in range(4)]
    for employee in people:
        uow.add_employee(employee)
    other_company = person(msisdn="4791111111", company=uuid.uuid4())
    uow.add_employee(other_company)
    await ask(uow, people[0], keeper)
    await ask(uow, people[1], keeper)
    refusal = await refused_ask(uow, people[2], keeper)
    assert refusal.code is ErrorCode.SMS_BUDGET_SPENT
    # Until midnight UTC (the clock says 08:00).
    assert refusal.retry_after_s == 16 * 3600
    await ask(uow, other_company, keeper)  # another company's budget is its own
    assert [r.reason for r in await uow.verifications.refusals_of(COMPANY, since=clock.now)] == [
        "budget_spent"
    ]
    clock.advance(hours=16)
    await ask(uow, people[3], keeper)


async def test_a_confirmed_number_gets_no_code(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    assert await type_code(uow, hakon, keeper, verification_id, codes.last) is None
    refusal = await refused_ask(uow, hakon, keeper)
    assert refusal.code is ErrorCode.VERIFICATION_ALREADY_CONFIRMED
    assert len(uow.messages.published) == 1


async def test_no_subscription_no_code(uow: FakeUnitOfWork, keeper: CodeKeeper) -> None:
    employee = person(msisdn=None)
    uow.add_employee(employee)
    assert (await refused_ask(uow, employee, keeper)).code is ErrorCode.NO_SUBSCRIPTION


async def test_asking_and_typing_lock_the_employee_first(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    await type_code(uow, hakon, keeper, verification_id, codes.last)
    assert uow.verifications.locked == [hakon.id, hakon.id]


async def test_two_pending_codes_at_commit_are_refused_as_busy(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper
) -> None:
    await ask(uow, hakon, keeper)
    # Another request's code commits between this one's replacing and its commit (a database
    # without row locks): the one-pending-code index refuses the second.
    stolen = uow.verifications.stored[0]

    def other_request_commits(fake: FakeUnitOfWork) -> None:
        stolen.state = "pending"

    uow.before_commit = other_request_commits
    refusal = await refused_ask(uow, hakon, keeper)
    assert refusal.code is ErrorCode.VERIFICATION_BUSY
    assert len(uow.messages.published) == 1


async def test_the_page_knows_whether_a_new_code_may_be_sent_and_how_long_to_wait(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, clock: FakeClock
) -> None:
    state = await page_state(uow, hakon, keeper)
    assert state.open_code is None
    assert state.refusal is None
    for _ in range(3):
        await ask(uow, hakon, keeper)
        clock.advance(seconds=1)
    state = await page_state(uow, hakon, keeper)
    assert state.open_code is not None
    assert state.open_code.id == uow.verifications.stored[-1].id
    assert state.refusal is not None
    assert state.refusal.retry_after_s == 15 * 60 - 3
    clock.advance(minutes=10)
    assert (await page_state(uow, hakon, keeper)).open_code is None  # expired


# ---- Delivery reports ---------------------------------------------------------------------------


async def test_delivery_reports_move_forward_once_and_never_back(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, clock: FakeClock
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    sent = VerificationCodeSent(verification_id=verification_id, gateway_message_id="g1", sent_at=clock.now)
    delivered = VerificationDelivered(verification_id=verification_id, delivered_at=clock.now)
    failed = VerificationDeliveryFailed(
        verification_id=verification_id,
        reason="not delivered",
        reason_code=VerificationFailureCode.UNDELIVERED,
        failed_at=clock.now,
    )
    stored = uow.verifications.stored[0]
    assert await apply_delivery_event(uow, message_id="m1", event=delivered) is DeliveryOutcome.APPLIED
    assert stored.delivery_status == "delivered"
    assert await apply_delivery_event(uow, message_id="m2", event=sent) is DeliveryOutcome.UNCHANGED
    assert await apply_delivery_event(uow, message_id="m3", event=failed) is DeliveryOutcome.UNCHANGED
    assert stored.delivery_status == "delivered"
    assert await apply_delivery_event(uow, message_id="m1", event=delivered) is DeliveryOutcome.DUPLICATE
    unknown = VerificationDelivered(verification_id=uuid.uuid4(), delivered_at=clock.now)
    assert await apply_delivery_event(uow, message_id="m4", event=unknown) is DeliveryOutcome.UNKNOWN


async def test_a_failed_delivery_keeps_its_reason_and_a_later_delivered_is_not_believed(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, clock: FakeClock
) -> None:
    verification_id = await ask(uow, hakon, keeper)
    failed = VerificationDeliveryFailed(
        verification_id=verification_id,
        reason="403 Forbidden: not routable",
        reason_code=VerificationFailureCode.REJECTED,
        failed_at=clock.now,
    )
    await apply_delivery_event(uow, message_id="m1", event=failed)
    late = VerificationDelivered(verification_id=verification_id, delivered_at=clock.now)
    assert await apply_delivery_event(uow, message_id="m2", event=late) is DeliveryOutcome.UNCHANGED
    stored = uow.verifications.stored[0]
    assert (stored.delivery_status, stored.delivery_reason_code) == ("failed", "rejected")


# ---- Settings -----------------------------------------------------------------------------------


def test_the_code_secret_is_required_outside_local_mode() -> None:
    base: dict[str, Any] = {
        "database_url": "sqlite://",
        "PORTAL_MODE": "production",
        "SESSION_SECRET": "s" * 40,
    }
    with pytest.raises(ValueError, match="VERIFICATION_CODE_SECRET"):
        PortalSettings(**base)
    settings = PortalSettings(**base, VERIFICATION_CODE_SECRET="v" * 40)
    assert settings.effective_verification_secret == b"v" * 40
    assert "v" * 40 not in repr(settings)  # a SecretStr


def test_the_ttl_may_not_exceed_ten_minutes() -> None:
    with pytest.raises(ValueError, match="less than or equal to 600"):
        PortalSettings(database_url="sqlite://", VERIFICATION_CODE_TTL_S=601)


def test_locally_the_code_secret_is_made_per_process() -> None:
    local = PortalSettings(database_url="sqlite://")
    assert len(local.effective_verification_secret) == 32


def test_times_are_utc() -> None:
    assert domain.start_of_day(datetime(2026, 12, 1, 23, 30, tzinfo=UTC)) == datetime(2026, 12, 1, tzinfo=UTC)


async def test_a_code_killed_by_wrong_tries_says_when_a_new_one_may_be_asked_for(
    uow: FakeUnitOfWork, hakon: Employee, keeper: CodeKeeper, codes: Codes, clock: FakeClock
) -> None:
    for _ in range(3):
        verification_id = await ask(uow, hakon, keeper)
    clock.advance(minutes=5)
    answers = [await type_code(uow, hakon, keeper, verification_id, wrong(codes.last)) for _ in range(5)]
    last = answers[-1]
    assert code_of(last) is ErrorCode.VERIFICATION_TOO_MANY_TRIES
    assert last is not None
    assert last.retry_after_s == 10 * 60  # the 3-per-15-minutes window, not "at once"
