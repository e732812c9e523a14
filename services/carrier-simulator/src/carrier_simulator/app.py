"""The simulator's HTTP app: TMF622 productOrder and hub routes, its run-time config, and health."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mport_shared.logging import get_logger
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException

from carrier_simulator.notifications import DeliveryPolicy, Notifier
from carrier_simulator.orders import Behaviour, OrderBook
from carrier_simulator.settings import MAX_LATENCY_MS, SimulatorSettings
from carrier_simulator.state_file import StateFile, encode_state
from carrier_simulator.tmf622 import (
    BASE_PATH,
    Error,
    Hub,
    HubCreate,
    ProductOrder,
    ProductOrderCreate,
    ProductOrderState,
)

log = get_logger(__name__)

_ERROR_CODES = {
    status.HTTP_400_BAD_REQUEST: "INVALID_REQUEST",
    status.HTTP_404_NOT_FOUND: "NOT_FOUND",
    status.HTTP_405_METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
    status.HTTP_503_SERVICE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
}

MAX_LIMIT = 1000
MAX_OFFSET = 10**9


class SimulatorConfig(BaseModel):
    """How slow and unreliable the carrier is right now."""

    latency_ms: int = Field(ge=0, le=MAX_LATENCY_MS)
    latency_jitter_ms: int = Field(ge=0, le=MAX_LATENCY_MS)
    failure_rate: float = Field(ge=0.0, le=1.0)
    unavailable_rate: float = Field(ge=0.0, le=1.0)
    notification_drop_rate: float = Field(ge=0.0, le=1.0)
    down: bool


class SimulatorConfigUpdate(BaseModel):
    """A change to the config; fields left out keep their value."""

    # A misspelt field silently ignored would leave a test running against the wrong carrier.
    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)
    latency_jitter_ms: int | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)
    failure_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    unavailable_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    notification_drop_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    down: bool | None = None


def _digits_only(value: object) -> object:
    # int() would take "1.0", " 5" or "1_000"; a paging parameter is plain digits (a sign is
    # let through so that "-1" is told it is below the minimum).
    digits = value.removeprefix("-") if isinstance(value, str) else "0"
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("must be a whole number written in digits")
    return value


def error_response(status_code: int, *, reason: str, message: str | None = None) -> JSONResponse:
    """A TMF `Error` body with the given HTTP status."""
    body = Error(
        code=_ERROR_CODES.get(status_code, f"HTTP_{status_code}"),
        reason=reason,
        message=message,
        status=str(status_code),
    )
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status_code)


def create_app(settings: SimulatorSettings) -> FastAPI:
    """Build the simulator with its own order book and hubs, starting from `settings`."""
    behaviour = Behaviour(
        latency_ms=settings.latency_ms,
        latency_jitter_ms=settings.latency_jitter_ms,
        failure_rate=settings.failure_rate,
        unavailable_rate=settings.unavailable_rate,
        notification_drop_rate=settings.notification_drop_rate,
        down=settings.down,
    )
    rng = random.Random(settings.seed)

    def snapshot() -> str:
        return encode_state(orders=book.saved_orders(), hubs=notifier.saved_hubs())

    state_file = (
        None
        if settings.state_file is None
        else StateFile(settings.state_file, interval_s=settings.state_save_interval_s, snapshot=snapshot)
    )
    on_change = None if state_file is None else state_file.mark_dirty
    notifier = Notifier(
        behaviour=behaviour,
        rng=rng,
        policy=DeliveryPolicy(
            timeout_s=settings.notification_timeout_s,
            retry_initial_delay_s=settings.notification_retry_initial_delay_s,
            retry_max_delay_s=settings.notification_retry_max_delay_s,
            max_age_s=settings.notification_max_age_s,
            concurrency=settings.notification_concurrency,
            max_pending=settings.notification_max_pending,
        ),
        on_change=on_change,
    )
    book = OrderBook(
        behaviour=behaviour,
        known_offerings=settings.known_offerings,
        rng=rng,
        max_orders=settings.max_orders,
        listener=notifier,
        on_change=on_change,
        notify_on_create=settings.notify_on_create,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await notifier.start()
        if state_file is not None:
            saved = state_file.load()
            # Hubs first, so that orders finishing at once on restore notify them.
            hubs = notifier.restore(saved.hubs)
            orders = book.restore(saved.orders)
            log.info("carrier_simulator_state_loaded", path=str(state_file.path), orders=orders, hubs=hubs)
            state_file.start()
        try:
            yield
        finally:
            if state_file is not None:
                await state_file.stop()
            await notifier.close()

    app = FastAPI(
        title="Carrier simulator (TMF622 Product Ordering v5 subset)", version="5.0.0", lifespan=lifespan
    )
    app.include_router(_tmf622_router(book, notifier, behaviour, rng))
    app.include_router(_simulator_router(behaviour, notifier))
    _add_error_handlers(app)
    return app


def _tmf622_router(
    book: OrderBook, notifier: Notifier, behaviour: Behaviour, rng: random.Random
) -> APIRouter:
    async def sometimes_unavailable() -> None:  # async: no thread-pool hop per request
        if behaviour.down:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Carrier is down (simulated)")
        # Refused before any work is done, as an overloaded gateway would: a retry is safe.
        if behaviour.unavailable_rate > 0 and rng.random() < behaviour.unavailable_rate:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "Carrier temporarily unavailable (simulated)"
            )

    router = APIRouter(
        prefix=BASE_PATH,
        dependencies=[Depends(sometimes_unavailable)],
        responses={
            status.HTTP_400_BAD_REQUEST: {"model": Error},
            status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Error},
        },
    )

    @router.post(
        "/productOrder",
        tags=["productOrder"],
        status_code=status.HTTP_201_CREATED,
        response_model=ProductOrder,
        response_model_exclude_none=True,
        responses={status.HTTP_200_OK: {"model": ProductOrder, "description": "Already exists"}},
    )
    async def create_product_order(body: ProductOrderCreate, response: Response) -> ProductOrder:
        """Create a ProductOrder; a repeated externalId returns the order made the first time."""
        order, created = await book.place(body)
        if created:
            response.headers["Location"] = order.href
        else:
            response.status_code = status.HTTP_200_OK
        return order

    @router.get(
        "/productOrder",
        tags=["productOrder"],
        response_model=list[ProductOrder],
        response_model_exclude_none=True,
    )
    async def list_product_orders(
        response: Response,
        external_id: Annotated[str | None, Query(alias="externalId")] = None,
        state: ProductOrderState | None = None,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET), BeforeValidator(_digits_only)] = 0,
        limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT), BeforeValidator(_digits_only)] = None,
    ) -> list[ProductOrder]:
        """List ProductOrders, optionally those made for one externalId or in one state."""
        orders, total = book.list_orders(external_id=external_id, state=state, offset=offset, limit=limit)
        response.headers["X-Total-Count"] = str(total)
        response.headers["X-Result-Count"] = str(len(orders))
        return orders

    @router.get(
        "/productOrder/{order_id}",
        tags=["productOrder"],
        response_model=ProductOrder,
        response_model_exclude_none=True,
        responses={status.HTTP_404_NOT_FOUND: {"model": Error}},
    )
    async def retrieve_product_order(order_id: str) -> ProductOrder:
        """Retrieve a ProductOrder by its id."""
        order = book.get(order_id)
        if order is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No productOrder with id '{order_id}'")
        return order

    @router.post(
        "/hub",
        tags=["events subscription"],
        status_code=status.HTTP_201_CREATED,
        response_model=Hub,
        response_model_exclude_none=True,
    )
    async def create_hub(body: HubCreate, response: Response) -> Hub:
        """Register a listener: every order state change is posted to its callback from now on."""
        hub = notifier.add_hub(body)
        response.headers["Location"] = hub.href
        return hub

    @router.delete(
        "/hub/{hub_id}",
        tags=["events subscription"],
        status_code=status.HTTP_204_NO_CONTENT,
        responses={status.HTTP_404_NOT_FOUND: {"model": Error}},
    )
    async def delete_hub(hub_id: str) -> Response:
        """Remove a listener; what was still pending for it is never sent."""
        if not notifier.remove_hub(hub_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No hub with id '{hub_id}'")
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router


def _simulator_router(behaviour: Behaviour, notifier: Notifier) -> APIRouter:
    router = APIRouter(tags=["simulator"])

    def current() -> SimulatorConfig:
        return SimulatorConfig(
            latency_ms=behaviour.latency_ms,
            latency_jitter_ms=behaviour.latency_jitter_ms,
            failure_rate=behaviour.failure_rate,
            unavailable_rate=behaviour.unavailable_rate,
            notification_drop_rate=behaviour.notification_drop_rate,
            down=behaviour.down,
        )

    @router.get("/simulator/config")
    async def get_config() -> SimulatorConfig:
        """How the carrier behaves now."""
        return current()

    @router.put("/simulator/config")
    async def put_config(update: SimulatorConfigUpdate) -> SimulatorConfig:
        """Make the carrier slower, faster, less reliable or absent; latency and failures apply
        to orders placed from now."""
        for name, value in update.model_dump(exclude_none=True).items():
            setattr(behaviour, name, value)
        notifier.set_down(behaviour.down)
        config = current()
        log.info("carrier_simulator_config_changed", **config.model_dump())
        return config

    @router.get("/simulator/hubs")
    async def get_hubs() -> list[dict[str, object]]:
        """The registered hubs, with how many notifications each got, lost and still awaits."""
        return notifier.hub_stats()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "ok"}

    return router


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for error in exc.errors():
            # The first element says where (body, query, path); the rest is the field path,
            # except for unparsable JSON, whose second element is a character offset.
            path = () if error.get("type") == "json_invalid" else error.get("loc", ())[1:]
            where = ".".join(str(part) for part in path) or "body"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return error_response(
            status.HTTP_400_BAD_REQUEST, reason="Invalid request", message="; ".join(problems)
        )

    @app.exception_handler(HTTPException)
    async def on_http_error(_request: Request, exc: HTTPException) -> Response:
        response = error_response(exc.status_code, reason=str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response
