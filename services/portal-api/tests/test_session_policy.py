"""When a session ends and when its last_seen_at moves, without I/O; the session settings; ending
one session's event streams."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from portal_api.auth.sessions import (
    SessionEnd,
    SessionGuard,
    SessionPolicy,
    SessionRefused,
    new_token,
    token_hash,
)
from portal_api.errors import ErrorCode, NotSignedIn
from portal_api.live import STREAM_BUFFER, LiveHub, OrderUpdate
from portal_api.settings import PortalSettings
from pydantic import ValidationError

SIGNED_IN = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
POLICY = SessionPolicy(idle_timeout=timedelta(minutes=30), max_age=timedelta(hours=8))


def ended(*, after: timedelta, idle_for: timedelta) -> SessionEnd | None:
    now = SIGNED_IN + after
    return POLICY.ended(now=now, created_at=SIGNED_IN, last_seen_at=now - idle_for)


def test_a_session_lives_until_it_has_been_idle_for_the_idle_timeout() -> None:
    assert ended(after=timedelta(minutes=29, seconds=59), idle_for=timedelta(minutes=29, seconds=59)) is None
    assert ended(after=timedelta(minutes=30), idle_for=timedelta(minutes=30)) is SessionEnd.IDLE
    assert ended(after=timedelta(hours=3), idle_for=timedelta(minutes=29)) is None


def test_a_session_ends_at_its_absolute_lifetime_however_recently_used() -> None:
    assert ended(after=timedelta(hours=7, minutes=59), idle_for=timedelta(0)) is None
    assert ended(after=timedelta(hours=8), idle_for=timedelta(0)) is SessionEnd.MAX_AGE
    # Both over: the absolute lifetime is the reason given.
    assert ended(after=timedelta(hours=9), idle_for=timedelta(hours=1)) is SessionEnd.MAX_AGE


def test_last_seen_moves_at_most_once_a_minute() -> None:
    seen = SIGNED_IN
    assert not POLICY.needs_touch(now=seen + timedelta(seconds=59), last_seen_at=seen)
    assert POLICY.needs_touch(now=seen + timedelta(seconds=60), last_seen_at=seen)


def test_a_short_idle_timeout_is_kept_to_within_a_tenth_of_itself() -> None:
    short = SessionPolicy(idle_timeout=timedelta(minutes=2), max_age=timedelta(hours=1))
    assert short.touch_every == timedelta(seconds=12)
    assert POLICY.touch_every == timedelta(minutes=1)


def test_the_purge_cut_offs_agree_with_ended() -> None:
    now = SIGNED_IN + timedelta(hours=9)
    idle_cutoff, age_cutoff = POLICY.expired_before(now)
    assert POLICY.ended(now=now, created_at=now, last_seen_at=idle_cutoff) is SessionEnd.IDLE
    assert POLICY.ended(now=now, created_at=now, last_seen_at=idle_cutoff + timedelta(seconds=1)) is None
    assert POLICY.ended(now=now, created_at=age_cutoff, last_seen_at=now) is SessionEnd.MAX_AGE


def test_tokens_are_long_random_and_stored_as_their_sha256() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 43 for t in tokens)  # 32 random bytes, base64url
    token = tokens.pop()
    assert token_hash(token) == hashlib.sha256(token.encode()).digest()
    assert len(token_hash(token)) == 32


def guard(*, after: timedelta) -> SessionGuard:
    return SessionGuard(employee_id=KARI, token_hash=b"h" * 32, policy=POLICY, now=SIGNED_IN + after)


KARI = uuid.uuid4()


def test_a_guard_checks_once_and_only_for_the_signed_in_employee() -> None:
    g = guard(after=timedelta(minutes=5))
    assert g.guards(KARI)
    assert not g.guards(uuid.uuid4())  # someone else's record: no session of theirs to check
    g.judge((SIGNED_IN, SIGNED_IN + timedelta(minutes=4, seconds=30)))
    assert not g.guards(KARI)  # checked: the request's later reads cost nothing
    assert not g.touch_due  # seen 30 s ago


def test_a_guard_notes_a_touch_when_last_seen_is_a_minute_old() -> None:
    g = guard(after=timedelta(minutes=5))
    g.judge((SIGNED_IN, SIGNED_IN + timedelta(minutes=4)))
    assert g.touch_due


@pytest.mark.parametrize(
    ("times", "why", "code"),
    [
        (None, SessionEnd.ENDED, ErrorCode.NOT_SIGNED_IN),
        ((SIGNED_IN, SIGNED_IN), SessionEnd.IDLE, ErrorCode.SESSION_EXPIRED),
        (
            (SIGNED_IN - timedelta(hours=8), SIGNED_IN + timedelta(minutes=30)),
            SessionEnd.MAX_AGE,
            ErrorCode.SESSION_EXPIRED,
        ),
    ],
)
def test_a_guard_refuses_a_session_that_is_not_on_with_why(
    times: tuple[datetime, datetime] | None, why: SessionEnd, code: ErrorCode
) -> None:
    g = guard(after=timedelta(minutes=30))
    with pytest.raises(SessionRefused) as refused:
        g.judge(times)
    assert isinstance(refused.value, NotSignedIn)  # the API's 401, a page's sign-in page
    assert (refused.value.why, refused.value.code) == (why, code)
    assert g.guards(KARI)  # not checked: a second read would ask again


def settings(**values: str) -> PortalSettings:
    return PortalSettings(database_url="sqlite+aiosqlite:///:memory:", **values)  # type: ignore[arg-type]


def test_the_session_settings_have_sensible_defaults() -> None:
    policy = settings().session_policy
    assert policy.idle_timeout == timedelta(minutes=30)
    assert policy.max_age == timedelta(hours=8)


def test_the_cookie_has_the_host_prefix_outside_local_mode() -> None:
    assert settings().session_cookie == "mport_session"  # plain http locally: no __Host- there
    production = settings(
        PORTAL_MODE="production", SESSION_SECRET="s" * 40, VERIFICATION_CODE_SECRET="v" * 40
    )
    assert production.session_cookie == "__Host-mport_session"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"SESSION_IDLE_TIMEOUT_S": "7200", "SESSION_MAX_AGE_S": "3600"}, "SESSION_IDLE_TIMEOUT_S"),
        ({"SESSION_IDLE_TIMEOUT_S": "10"}, "SESSION_IDLE_TIMEOUT_S"),
        ({"SESSION_MAX_AGE_S": "0"}, "SESSION_MAX_AGE_S"),
    ],
)
def test_session_settings_that_make_no_sense_are_refused(values: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        settings(**values)


def test_ending_a_session_ends_its_streams_and_no_others_even_a_stream_far_behind() -> None:
    kari = uuid.uuid4()
    hub = LiveHub()
    phone, laptop = hub.open(kari, session=b"phone"), hub.open(kari, session=b"laptop")
    for _ in range(STREAM_BUFFER):  # the phone's page has not read a thing: its queue is full
        hub.publish(kari, OrderUpdate(order_id="o", status="submitted", product_code="p"))
    hub.end_session(b"phone")
    assert phone.qsize() == STREAM_BUFFER
    assert [phone.get_nowait() for _ in range(STREAM_BUFFER)][-1] is None  # the end, last
    assert all(laptop.get_nowait() is not None for _ in range(STREAM_BUFFER))
    assert laptop.empty()
    hub.close_stream(kari, phone, session=b"phone")
    hub.end_session(b"phone")  # gone: nothing to end
    assert phone.empty()
