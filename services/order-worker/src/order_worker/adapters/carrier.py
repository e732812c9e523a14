"""The carrier as the order-worker sees it: submit an order, read its state, subscribe to its
state changes; over TMF622 v5 HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Literal, Protocol
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MSISDN_CHARACTERISTIC = "msisdn"


class CarrierOrderState(StrEnum):
    """The carrier order's state: TMF622 ProductOrderStateType."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"
    DRAFT = "draft"
    IN_PROGRESS_ACCEPTED = "inProgress.accepted"


# States the carrier never leaves; `partial` is one: some items were done and will stay so.
TERMINAL_STATES = frozenset(
    {
        CarrierOrderState.COMPLETED,
        CarrierOrderState.FAILED,
        CarrierOrderState.REJECTED,
        CarrierOrderState.CANCELLED,
        CarrierOrderState.PARTIAL,
    }
)


@dataclass(frozen=True, slots=True)
class CarrierOrder:
    """The carrier's order made for one of ours, as last read."""

    id: str
    external_id: str
    state: CarrierOrderState
    failure_reason: str | None
    expected_completion: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True, slots=True, kw_only=True)
class CarrierOrderRequest:
    """What to provision for one of our orders; `order_id` is the carrier's idempotency key."""

    order_id: str
    msisdn: str
    product_offering_id: str
    action: Literal["add", "modify", "delete"]  # TMF622 ItemActionType; delete ends a service
    # Further product characteristics, e.g. the ICC of a SIM or where to ship it.
    characteristics: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.order_id:
            raise ValueError("order_id must not be empty: it is the carrier's idempotency key")
        if MSISDN_CHARACTERISTIC in self.characteristics:
            raise ValueError("msisdn is its own field, not one of the characteristics")
        # A frozen request should not change under the caller's feet through a shared dict.
        object.__setattr__(self, "characteristics", MappingProxyType(dict(self.characteristics)))


class Carrier(Protocol):
    """Provisions our orders at the mobile carrier."""

    async def submit(self, request: CarrierOrderRequest) -> CarrierOrder:
        """Place the order; submitting the same order id again returns the same carrier order."""
        ...

    async def get(self, carrier_order_id: str) -> CarrierOrder:
        """The carrier order as it is now; CarrierOrderUnknown if the carrier has no such order."""
        ...

    async def register_listener(self, callback: str) -> str:
        """Ask the carrier to post its order state changes to `callback`; returns the hub id."""
        ...

    async def unregister_listener(self, hub_id: str) -> None:
        """Stop the notifications of a hub registered before (an unknown hub is no error)."""
        ...


class CarrierError(Exception):
    """Anything that went wrong talking to the carrier."""


class CarrierUnavailable(CarrierError):
    """The carrier could not answer now (network, timeout, 5xx, 429); try again later."""


class CarrierResponseInvalid(CarrierUnavailable):
    """The carrier answered with something that is not a ProductOrder; retried like an outage."""


class CarrierRejected(CarrierError):
    """The carrier refused the request itself: a business failure that retrying will not fix."""

    def __init__(self, reason: str, *, status_code: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class CarrierOrderUnknown(CarrierUnavailable):
    """The carrier answered 404 for an order it acknowledged before (it lost it, or the order is not
    visible yet): submitting again, which is idempotent by externalId, is the way back."""


class _Wire(BaseModel):
    # Only what the adapter reads; a real carrier sends much more, and that is fine.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _ExternalIdentifier(_Wire):
    id: str
    owner: str | None = None


class _ErrorMessage(_Wire):
    reason: str | None = None
    message: str | None = None


class _ProductOrder(_Wire):
    id: str = Field(min_length=1)
    state: CarrierOrderState
    external_id: list[_ExternalIdentifier] = Field(default_factory=list, alias="externalId")
    errors: list[_ErrorMessage] | None = Field(default=None, alias="productOrderErrorMessage")
    cancellation_reason: str | None = Field(default=None, alias="cancellationReason")
    expected_completion_date: datetime | None = Field(default=None, alias="expectedCompletionDate")


class _Hub(_Wire):
    id: str = Field(min_length=1)


class _Error(_Wire):
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    """A carrier's HTTP answer, read in full."""

    status: int
    body: bytes
    reason_phrase: str

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class Tmf622Carrier:
    """A carrier that speaks TMF622 Product Ordering v5 over HTTP.

    `base_url` is the API root, e.g. `http://127.0.0.1:8081/tmf-api/productOrderingManagement/v5`;
    `session` carries the timeout, the connection pool and any auth.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str, *, owner: str = "mPort") -> None:
        self._session = session
        self._root = base_url.rstrip("/")
        # Names us as the system that owns the externalId, as TMF's ExternalIdentifier asks.
        self._owner = owner

    async def submit(self, request: CarrierOrderRequest) -> CarrierOrder:
        answer = await self._send("POST", "productOrder", json=self._product_order(request))
        if answer.status == HTTPStatus.CONFLICT:
            # Some carriers refuse a repeated externalId instead of returning the first order.
            return await self._find_by_external_id(request.order_id, conflict=answer)
        return self._order_from(answer)

    async def get(self, carrier_order_id: str) -> CarrierOrder:
        answer = await self._send("GET", f"productOrder/{quote(carrier_order_id, safe='')}")
        if answer.status == HTTPStatus.NOT_FOUND:
            raise CarrierOrderUnknown(f"carrier has no productOrder {carrier_order_id}: {_reason(answer)}")
        return self._order_from(answer)

    async def register_listener(self, callback: str) -> str:
        answer = await self._send("POST", "hub", json={"callback": callback, "@type": "Hub"})
        self._raise_for_status(answer)
        try:
            return _Hub.model_validate_json(answer.body).id
        except ValidationError as exc:
            raise CarrierResponseInvalid(f"carrier answered POST /hub without a Hub: {exc}") from exc

    async def unregister_listener(self, hub_id: str) -> None:
        answer = await self._send("DELETE", f"hub/{quote(hub_id, safe='')}")
        if answer.status != HTTPStatus.NOT_FOUND:
            self._raise_for_status(answer)

    async def _find_by_external_id(self, order_id: str, *, conflict: _Answer) -> CarrierOrder:
        answer = await self._send("GET", "productOrder", params={"externalId": order_id})
        self._raise_for_status(answer)
        try:
            found = [_ProductOrder.model_validate(item) for item in json.loads(answer.body)]
        except (ValueError, TypeError) as exc:
            raise CarrierResponseInvalid(f"carrier listed orders unreadably: {exc}") from exc
        if not found:
            raise CarrierRejected(_reason(conflict), status_code=conflict.status)
        return self._to_carrier_order(found[0], order_id)

    def _product_order(self, request: CarrierOrderRequest) -> dict[str, Any]:
        characteristics = {MSISDN_CHARACTERISTIC: request.msisdn, **request.characteristics}
        return {
            "@type": "ProductOrder",
            "externalId": [
                {
                    "id": request.order_id,
                    "owner": self._owner,
                    "externalIdentifierType": "order",
                    "@type": "ExternalIdentifier",
                }
            ],
            "productOrderItem": [
                {
                    "id": "1",
                    "action": request.action,
                    "@type": "ProductOrderItem",
                    "productOffering": {
                        "id": request.product_offering_id,
                        "@type": "ProductOfferingRef",
                    },
                    "product": {
                        "@type": "Product",
                        "productCharacteristic": [
                            {
                                "name": name,
                                "value": value,
                                "valueType": "string",
                                "@type": "StringCharacteristic",
                            }
                            for name, value in characteristics.items()
                        ],
                    },
                }
            ],
        }

    async def _send(self, method: str, path: str, **kwargs: Any) -> _Answer:
        try:
            # Redirects are not followed: a POST must not turn into a GET somewhere else.
            async with self._session.request(
                method, f"{self._root}/{path}", allow_redirects=False, **kwargs
            ) as response:
                # Read to the end in here: only then does the connection go back to the pool.
                return _Answer(response.status, await response.read(), response.reason or "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Connection refused, reset, timed out: nothing says the carrier saw the request,
            # and submit is idempotent, so the whole call can be repeated.
            raise CarrierUnavailable(f"carrier unreachable: {exc!r}") from exc

    def _order_from(self, answer: _Answer) -> CarrierOrder:
        self._raise_for_status(answer)
        try:
            order = _ProductOrder.model_validate_json(answer.body)
        except ValidationError as exc:
            raise CarrierResponseInvalid(f"carrier answered without a ProductOrder: {exc}") from exc
        return self._to_carrier_order(order, None)

    def _to_carrier_order(self, order: _ProductOrder, fallback_external_id: str | None) -> CarrierOrder:
        return CarrierOrder(
            id=order.id,
            external_id=self._our_external_id(order) or fallback_external_id or "",
            state=order.state,
            failure_reason=_failure_reason(order),
            expected_completion=order.expected_completion_date,
        )

    def _our_external_id(self, order: _ProductOrder) -> str | None:
        ours = [ext.id for ext in order.external_id if ext.owner == self._owner]
        # A carrier may drop the owner; then the only externalId it keeps is still ours.
        candidates = ours or [ext.id for ext in order.external_id]
        return candidates[0] if candidates else None

    @staticmethod
    def _raise_for_status(answer: _Answer) -> None:
        code = answer.status
        if code < 400:
            return
        reason = _reason(answer)
        # 401/403 are a credential we must fix, 404 an endpoint or order the carrier cannot see
        # yet, 408/429/5xx load: none says the order itself is wrong, so they are all retried.
        if code >= 500 or code in _TRANSIENT_4XX:
            raise CarrierUnavailable(f"carrier answered {code}: {reason}")
        raise CarrierRejected(reason, status_code=code)


_TRANSIENT_4XX = frozenset(
    {
        HTTPStatus.UNAUTHORIZED,
        HTTPStatus.FORBIDDEN,
        HTTPStatus.NOT_FOUND,
        HTTPStatus.REQUEST_TIMEOUT,
        HTTPStatus.TOO_MANY_REQUESTS,
    }
)


def _reason(answer: _Answer) -> str:
    """The TMF Error's reason and message, or the start of whatever else the body was."""
    try:
        error = _Error.model_validate_json(answer.body)
    except ValidationError:
        return answer.text[:200] or answer.reason_phrase
    parts = [part for part in (error.reason, error.message) if part]
    return ": ".join(parts) or answer.text[:200] or answer.reason_phrase


def _failure_reason(order: _ProductOrder) -> str | None:
    # The reason is what the employee is shown; the message is detail for whoever fixes it.
    reasons = [reason for error in order.errors or () if (reason := error.reason or error.message)]
    if reasons:
        return "; ".join(reasons)
    if order.state is CarrierOrderState.CANCELLED:
        return order.cancellation_reason
    return None


async def look_again(carrier: Carrier, order: CarrierOrder, *, after_s: float) -> CarrierOrder:
    """The order read once more after `after_s` (if it was not finished yet); as last seen when
    the carrier cannot answer now, since a later read will find it."""
    if order.is_terminal:
        return order
    await asyncio.sleep(after_s)
    try:
        return await carrier.get(order.id)
    except CarrierUnavailable:
        return order


@dataclass(frozen=True, slots=True)
class StateChangeNotice:
    """What a ProductOrderStateChangeEvent claims: only a hint of which order to look at, since
    anyone who can reach the listener can post one."""

    carrier_order_id: str
    external_ids: tuple[str, ...]
    claimed_state: CarrierOrderState | None
    claimed_expected_completion: datetime | None = None


def parse_state_change(body: bytes) -> StateChangeNotice:
    """The order a TMF622 ProductOrderStateChangeEvent is about; ValueError if it names none.

    The productOrder is read from `event` (the TMF622 v5 examples) or `stateChangeEvent` (the v5
    schema's name for the same payload)."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError("the event is not a JSON object")
    payload = raw.get("event") or raw.get("stateChangeEvent")
    order = payload.get("productOrder") if isinstance(payload, dict) else None
    if not isinstance(order, dict) or not isinstance(order.get("id"), str) or not order["id"]:
        raise ValueError("the event names no productOrder id")
    external = order.get("externalId")
    external_ids = tuple(
        str(item["id"])
        for item in (external if isinstance(external, list) else ())
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    )
    try:
        claimed: CarrierOrderState | None = CarrierOrderState(str(order.get("state")))
    except ValueError:
        claimed = None
    try:
        expected = datetime.fromisoformat(str(order["expectedCompletionDate"]))
    except (KeyError, ValueError):
        expected = None
    return StateChangeNotice(
        carrier_order_id=order["id"],
        external_ids=external_ids,
        claimed_state=claimed,
        claimed_expected_completion=expected if expected is None or expected.tzinfo else None,
    )
