"""The simulator's HTTP app: TMF622 productOrder routes, its run-time config, and a health check."""

from __future__ import annotations

import random
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mport_shared.logging import get_logger
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from carrier_simulator.orders import Behaviour, OrderBook
from carrier_simulator.settings import SimulatorSettings
from carrier_simulator.tmf622 import (
    BASE_PATH,
    Error,
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


class SimulatorConfig(BaseModel):
    """How slow and unreliable the carrier is right now."""

    latency_ms: int = Field(ge=0)
    failure_rate: float = Field(ge=0.0, le=1.0)
    unavailable_rate: float = Field(ge=0.0, le=1.0)


class SimulatorConfigUpdate(BaseModel):
    """A change to the config; fields left out keep their value."""

    # A misspelt field silently ignored would leave a test running against the wrong carrier.
    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = Field(default=None, ge=0)
    failure_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    unavailable_rate: float | None = Field(default=None, ge=0.0, le=1.0)


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
    """Build the simulator with its own order book, starting from `settings`."""
    behaviour = Behaviour(
        latency_ms=settings.latency_ms,
        failure_rate=settings.failure_rate,
        unavailable_rate=settings.unavailable_rate,
    )
    rng = random.Random(settings.seed)
    book = OrderBook(
        behaviour=behaviour,
        known_offerings=settings.known_offerings,
        rng=rng,
        max_orders=settings.max_orders,
    )
    app = FastAPI(title="Carrier simulator (TMF622 Product Ordering v5 subset)", version="5.0.0")
    app.include_router(_tmf622_router(book, behaviour, rng))
    app.include_router(_simulator_router(behaviour))
    _add_error_handlers(app)
    return app


def _tmf622_router(book: OrderBook, behaviour: Behaviour, rng: random.Random) -> APIRouter:
    async def sometimes_unavailable() -> None:  # async: no thread-pool hop per request
        # Refused before any work is done, as an overloaded gateway would: a retry is safe.
        if behaviour.unavailable_rate > 0 and rng.random() < behaviour.unavailable_rate:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "Carrier temporarily unavailable (simulated)"
            )

    router = APIRouter(
        prefix=BASE_PATH,
        tags=["productOrder"],
        dependencies=[Depends(sometimes_unavailable)],
        responses={
            status.HTTP_400_BAD_REQUEST: {"model": Error},
            status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Error},
        },
    )

    @router.post(
        "/productOrder",
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
        response_model=list[ProductOrder],
        response_model_exclude_none=True,
    )
    async def list_product_orders(
        response: Response,
        external_id: Annotated[str | None, Query(alias="externalId")] = None,
        state: ProductOrderState | None = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> list[ProductOrder]:
        """List ProductOrders, optionally those made for one externalId or in one state."""
        orders, total = book.list_orders(external_id=external_id, state=state, offset=offset, limit=limit)
        response.headers["X-Total-Count"] = str(total)
        response.headers["X-Result-Count"] = str(len(orders))
        return orders

    @router.get(
        "/productOrder/{order_id}",
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

    return router


def _simulator_router(behaviour: Behaviour) -> APIRouter:
    router = APIRouter(tags=["simulator"])

    def current() -> SimulatorConfig:
        return SimulatorConfig(
            latency_ms=behaviour.latency_ms,
            failure_rate=behaviour.failure_rate,
            unavailable_rate=behaviour.unavailable_rate,
        )

    @router.get("/simulator/config")
    async def get_config() -> SimulatorConfig:
        """How the carrier behaves now."""
        return current()

    @router.put("/simulator/config")
    async def put_config(update: SimulatorConfigUpdate) -> SimulatorConfig:
        """Make the carrier slower, faster or less reliable; applies to orders placed from now."""
        if update.latency_ms is not None:
            behaviour.latency_ms = update.latency_ms
        if update.failure_rate is not None:
            behaviour.failure_rate = update.failure_rate
        if update.unavailable_rate is not None:
            behaviour.unavailable_rate = update.unavailable_rate
        config = current()
        log.info("carrier_simulator_config_changed", **config.model_dump())
        return config

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
