"""The hardening rules without I/O: settings per mode, order-list cursors, the event-stream cap, the
rate limiter's count and its Retry-After on a controllable clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from portal_api.live import LiveHub, TooManyStreams
from portal_api.orders.listing import BadCursor, OrderCursors, Position
from portal_api.ratelimit import RateLimits
from portal_api.settings import DEFAULT_ORDER_RATE_LIMIT, PortalSettings
from pydantic import ValidationError

KARI_ID = uuid.UUID("6d706f72-7400-4000-8000-000000001001")
HAKON_ID = uuid.UUID("6d706f72-7400-4000-8000-000000001002")
PRODUCTION = {"PORTAL_MODE": "production", "SESSION_SECRET": "s" * 40, "VERIFICATION_CODE_SECRET": "v" * 40}


def settings(**values: object) -> PortalSettings:
    return PortalSettings(database_url="sqlite+aiosqlite://", **values)  # type: ignore[arg-type]


# ---- settings ------------------------------------------------------------------------------------


def test_in_local_mode_docs_and_metrics_are_served_and_orders_are_not_rate_limited() -> None:
    local = settings()
    assert local.openapi_served
    assert local.api_docs_served
    assert local.metrics_on_main_port
    assert local.order_limit is None
    assert local.sign_in_limit == "30/minute"


def test_in_production_docs_and_metrics_are_hidden_and_orders_are_rate_limited_by_default() -> None:
    production = settings(**PRODUCTION)
    assert not production.openapi_served
    assert not production.api_docs_served
    assert not production.metrics_on_main_port
    assert production.order_limit == DEFAULT_ORDER_RATE_LIMIT
    assert production.sign_in_limit == "30/minute"


def test_each_default_can_be_set_either_way() -> None:
    assert settings(ORDER_RATE_LIMIT="5/minute").order_limit == "5/minute"
    assert settings(**PRODUCTION, ORDER_RATE_LIMIT="off").order_limit is None
    assert settings(**PRODUCTION, SIGN_IN_RATE_LIMIT="OFF").sign_in_limit is None
    assert settings(**PRODUCTION, SERVE_OPENAPI="true").openapi_served
    assert not settings(SERVE_OPENAPI="false", SERVE_API_DOCS="false").openapi_served
    # Metrics on a port of their own leave the portal's port, in local mode too.
    assert not settings(METRICS_PORT="9100").metrics_on_main_port


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"ORDER_RATE_LIMIT": "lots"}, "ORDER_RATE_LIMIT"),
        ({"SIGN_IN_RATE_LIMIT": "0/minute"}, "SIGN_IN_RATE_LIMIT"),
        ({**PRODUCTION, "SERVE_API_DOCS": "true"}, "SERVE_OPENAPI"),
    ],
)
def test_a_bad_setting_stops_the_start_naming_it(values: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        settings(**values)


# ---- order-list cursors --------------------------------------------------------------------------

POSITION = Position(datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=UTC), uuid.uuid4())


def test_a_cursor_names_its_position_exactly_for_its_employee() -> None:
    cursors = OrderCursors("k" * 40)
    assert cursors.load(KARI_ID, cursors.dump(KARI_ID, POSITION)) == POSITION


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda c: c, id="another employee's"),
        pytest.param(lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"), id="changed signature"),
        pytest.param(lambda c: "W1swLCIwMCJdXQ." + c.split(".")[1], id="changed position"),
        pytest.param(lambda c: "not-a-cursor", id="garbage"),
        pytest.param(lambda c: "", id="empty"),
        pytest.param(lambda c: c + "x" * 300, id="too long"),
    ],
)
def test_a_cursor_made_for_another_employee_or_changed_is_refused(forge: object) -> None:
    cursors = OrderCursors("k" * 40)
    kari_cursor = cursors.dump(KARI_ID, POSITION)
    assert callable(forge)
    with pytest.raises(BadCursor):
        cursors.load(HAKON_ID if forge(kari_cursor) == kari_cursor else KARI_ID, forge(kari_cursor))


def test_a_cursor_made_with_another_secret_is_refused() -> None:
    cursor = OrderCursors("k" * 40).dump(KARI_ID, POSITION)
    with pytest.raises(BadCursor):
        OrderCursors("other" * 8).load(KARI_ID, cursor)


# ---- the event-stream cap ------------------------------------------------------------------------


def test_an_employee_gets_as_many_streams_as_the_cap_and_a_closed_one_frees_its_place() -> None:
    hub = LiveHub(max_per_employee=2)
    first, second = hub.open(KARI_ID, session=b"phone"), hub.open(KARI_ID, session=b"laptop")
    with pytest.raises(TooManyStreams):
        hub.open(KARI_ID, session=b"phone")
    hub.open(HAKON_ID, session=b"hakon")  # a cap per employee, not for everyone
    hub.close_stream(KARI_ID, first, session=b"phone")
    hub.close_stream(KARI_ID, first, session=b"phone")  # twice is harmless
    third = hub.open(KARI_ID, session=b"phone")
    assert hub.open_streams(KARI_ID) == 2
    for queue, session in ((second, b"laptop"), (third, b"phone")):
        hub.close_stream(KARI_ID, queue, session=session)
    assert hub.open_streams(KARI_ID) == 0
    assert not hub.watching(KARI_ID)


# ---- the rate limiter ----------------------------------------------------------------------------


class Clock:
    """Stands in for time.time() where the limiter and its storage read it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    for module in ("limits.aio.storage.memory", "portal_api.ratelimit"):
        monkeypatch.setattr(f"{module}.time", clock)
    return clock


async def test_a_limit_refuses_past_its_count_and_retry_after_is_when_it_allows_again(clock: Clock) -> None:
    limits = RateLimits(storage_uri="async+memory://", orders="3/minute", sign_in=None)
    for _ in range(3):
        assert await limits.hit(limits.orders, "orders", "kari") is None
    refused = await limits.hit(limits.orders, "orders", "kari")
    assert refused is not None
    item, retry_after_s = refused
    assert str(item) == "3 per 1 minute"
    assert retry_after_s == 60
    assert await limits.hit(limits.orders, "orders", "hakon") is None  # counted per key
    clock.now += 20
    refused = await limits.hit(limits.orders, "orders", "kari")
    assert refused is not None
    assert refused[1] == 40
    clock.now += 39
    assert await limits.hit(limits.orders, "orders", "kari") is not None
    clock.now += 1
    assert await limits.hit(limits.orders, "orders", "kari") is None


async def test_several_limits_all_hold(clock: Clock) -> None:
    limits = RateLimits(storage_uri="async+memory://", orders="2/second;3/hour", sign_in=None)
    for _ in range(2):
        assert await limits.hit(limits.orders, "orders", "kari") is None
    assert await limits.hit(limits.orders, "orders", "kari") is not None  # 2/second
    clock.now += 1
    assert await limits.hit(limits.orders, "orders", "kari") is None  # the third this hour
    clock.now += 1
    refused = await limits.hit(limits.orders, "orders", "kari")
    assert refused is not None
    assert str(refused[0]) == "3 per 1 hour"
    assert refused[1] == 3600 - 2


def test_a_storage_that_is_not_async_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="async"):
        RateLimits(storage_uri="memory://", orders=None, sign_in=None)
