"""Orders API: place an order (202, idempotent by key) and read orders with their status."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from mport_shared.events import Billing, OrderFailureCode, OrderKind
from mport_shared.logging import get_logger
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from portal_api.deps import PlacingUow, SignedInEmployee, Uow, require_csrf
from portal_api.errors import ErrorCode
from portal_api.intake import admit_order
from portal_api.models import Order
from portal_api.orders.domain import DeductionAcceptance, OrderStatus, details_problem, text_problem
from portal_api.orders.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    BadCursor,
    OrderCursors,
    order_page,
)
from portal_api.orders.service import (
    EndService,
    PlacedOrder,
    PlaceOrder,
    end_service,
    order_of,
    place_order,
)
from portal_api.problems import (
    BODY_TOO_LARGE,
    CSRF_FAILED,
    IDEMPOTENCY_KEY_REQUIRED,
    INVALID_CURSOR,
    INVALID_IDEMPOTENCY_KEY,
    INVALID_REQUEST,
    PIPELINE_BUSY,
    RATE_LIMITED,
    Problem,
    problem_responses,
)
from portal_api.ratelimit import limit_orders
from portal_api.settings import PortalSettings

log = get_logger(__name__)


router = APIRouter(prefix="/api/v1", tags=["orders"], dependencies=[Depends(require_csrf)])


class AcceptDeduction(BaseModel):
    """The employee's acceptance of the salary deduction, as the confirm dialog stated it."""

    model_config = ConfigDict(extra="forbid")
    amount_ore: int = Field(ge=0, description="The amount the dialog stated, in øre")
    text: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description='The dialog\'s words, e.g. "Dette medfører lønnstrekk: 149,00 kr."'
    )

    @field_validator("text")
    @classmethod
    def _one_line(cls, text: str) -> str:
        if problem := text_problem(text):
            raise PydanticCustomError("deduction_text", f"The text is not valid: {problem}.")
        if not text.strip():
            raise PydanticCustomError("deduction_text", "The text is empty.")
        return text


class OrderRequest(BaseModel):
    product_code: Annotated[str, Field(min_length=1, max_length=50)]
    # For SIM orders: icc (Aktiver nytt SIM) or delivery_name and delivery_address (Bestill SIM).
    details: dict[str, str] = Field(default_factory=dict, max_length=5)
    accept_deduction: AcceptDeduction | None = Field(
        default=None,
        description="Needed when the order costs the employee anything (GET /api/v1/catalog: "
        "employee_pays_ore): their acceptance of that amount as a salary deduction "
        "(arbeidsmiljøloven § 14-15). Refused if the amount is not what the policy says now.",
    )
    action: Literal["delete"] | None = Field(
        default=None,
        description='"delete": end the monthly add-on `product_code` (Avslutt); no details, and no '
        "deduction to accept (its deductions stop)",
    )

    @field_validator("details", mode="before")
    @classmethod
    def _details_are_text(cls, details: object) -> object:
        # Before the type check: an error on one detail would name its key in `loc`, and a key
        # with a lone surrogate cannot be written into the answer.
        if isinstance(details, dict) and (problem := details_problem(details)):
            raise PydanticCustomError("order_detail_text", problem)
        return details


class OrderOut(BaseModel):
    id: uuid.UUID
    status: OrderStatus
    product_code: str
    product_name: str
    carrier_product_code: str
    kind: OrderKind
    action: Literal["add", "modify", "delete"] = Field(
        description="add: a new service or SIM; modify: a plan change; delete: ending a monthly add-on"
    )
    ends_order_id: uuid.UUID | None = Field(description="For delete: the order that started the add-on")
    consent_id: uuid.UUID | None = Field(
        description="The employee's recorded acceptance of the deduction, when they pay anything"
    )
    msisdn: str
    details: dict[str, str]
    employee_charge_ore: int
    billing: Billing
    failure_reason: str | None
    failure_code: OrderFailureCode | None = Field(
        description="Why a failed order failed, for clients to switch on (failure_reason is for people)"
    )
    carrier_state: str | None = Field(
        description="The carrier's own state of the order (TMF622 ProductOrderStateType), once it has it"
    )
    expected_completion_at: datetime | None = Field(
        description="When the carrier expects to be done, when it has said so"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, placed: PlacedOrder) -> OrderOut:
        order, product = placed.order, placed.product
        return cls(
            id=order.id,
            status=OrderStatus(order.status),
            product_code=order.product_code,
            product_name=product.name,
            carrier_product_code=product.carrier_product_code,
            kind=OrderKind(order.kind),
            action=_action(order),
            ends_order_id=order.ends_order_id,
            consent_id=order.consent_id,
            msisdn=order.msisdn,
            details=order.details,
            employee_charge_ore=order.employee_charge_ore,
            billing=Billing(order.billing),
            failure_reason=order.failure_reason,
            failure_code=OrderFailureCode(order.failure_code) if order.failure_code else None,
            carrier_state=order.carrier_state,
            expected_completion_at=order.expected_completion_at,
            created_at=order.created_at,
            updated_at=order.updated_at,
        )


def _action(order: Order) -> Literal["add", "modify", "delete"]:
    if order.action == "delete":
        return "delete"
    return "modify" if order.kind == OrderKind.PLAN else "add"


IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# Declared here rather than as a required Header parameter: FastAPI would answer a missing one
# with its generic 422, and a missing key deserves its own 400 problem.
_IDEMPOTENCY_KEY_DOC = {
    "name": IDEMPOTENCY_KEY_HEADER,
    "in": "header",
    "required": True,
    "description": "A fresh key (for example a UUID) per order: a request repeated with the same "
    "key is answered with the order the first one made, and never orders twice.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


async def idempotency_key(
    key: Annotated[
        str | None, Header(alias=IDEMPOTENCY_KEY_HEADER, max_length=200, include_in_schema=False)
    ] = None,
) -> str:
    if not key or not key.strip():
        raise Problem.of(
            IDEMPOTENCY_KEY_REQUIRED,
            f"Send an {IDEMPOTENCY_KEY_HEADER} header (for example a UUID) with every order, "
            "so that a retry never orders twice.",
        )
    if problem := text_problem(key):
        raise Problem.of(
            INVALID_IDEMPOTENCY_KEY, f"The {IDEMPOTENCY_KEY_HEADER} header is not valid: {problem}."
        )
    return key.strip()


@router.post(
    "/orders",
    status_code=202,
    response_model=OrderOut,
    responses={
        202: {"description": "Accepted: stored, and its OrderPlaced event committed"},
        **problem_responses(
            RATE_LIMITED,
            ErrorCode.NOT_SIGNED_IN,
            CSRF_FAILED,
            ErrorCode.SELF_SERVICE_NOT_ACTIVATED,
            ErrorCode.NOT_ALLOWED_BY_POLICY,
            ErrorCode.NO_SUBSCRIPTION,
            ErrorCode.ALREADY_ACTIVE,
            ErrorCode.ALREADY_ORDERED,
            ErrorCode.UNKNOWN_PRODUCT,
            ErrorCode.INVALID_DETAILS,
            ErrorCode.INVALID_ICC,
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            ErrorCode.DEDUCTION_NOT_ACCEPTED,
            ErrorCode.DEDUCTION_CHANGED,
            ErrorCode.SERVICE_NOT_ACTIVE,
            ErrorCode.SERVICE_ALREADY_ENDING,
            INVALID_REQUEST,
            IDEMPOTENCY_KEY_REQUIRED,
            INVALID_IDEMPOTENCY_KEY,
            BODY_TOO_LARGE,
            PIPELINE_BUSY,
        ),
    },
    openapi_extra={"parameters": [_IDEMPOTENCY_KEY_DOC]},
    dependencies=[Depends(limit_orders), Depends(admit_order)],
)
async def create_order(
    body: OrderRequest, who: SignedInEmployee, uow: PlacingUow, key: Annotated[str, Depends(idempotency_key)]
) -> JSONResponse:
    """Place an order; with `action` delete, end a monthly add-on (Avslutt)."""
    if body.action == "delete":
        if body.details or body.accept_deduction is not None:
            raise Problem.of(
                INVALID_REQUEST,
                "Ending a service takes no details and no deduction to accept.",
                errors=[{"loc": ["body", "details"], "msg": "not taken with action delete"}],
            )
        placed = await end_service(
            uow, EndService(employee_id=who.employee_id, product_code=body.product_code, idempotency_key=key)
        )
    else:
        accepted = body.accept_deduction
        placed = await place_order(
            uow,
            PlaceOrder(
                employee_id=who.employee_id,
                product_code=body.product_code,
                details=body.details,
                idempotency_key=key,
                accept_deduction=(
                    DeductionAcceptance(amount_ore=accepted.amount_ore, text=accepted.text)
                    if accepted is not None
                    else None
                ),
            ),
        )
    return JSONResponse(
        OrderOut.of(placed).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/api/v1/orders/{placed.order.id}"},
    )


@router.get(
    "/orders",
    responses={
        200: {
            "description": "A page of this employee's orders, newest first",
            "headers": {
                "Link": {
                    "description": "The next (older) page, when there is one: "
                    '`</api/v1/orders?limit=50&cursor=…>; rel="next"`',
                    "schema": {"type": "string"},
                }
            },
        },
        **problem_responses(ErrorCode.NOT_SIGNED_IN, INVALID_CURSOR, INVALID_REQUEST),
    },
)
async def list_orders(
    request: Request,
    response: Response,
    who: SignedInEmployee,
    uow: Uow,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="orders per page")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="where the page starts (the last page's Link)"),
    ] = None,
) -> list[OrderOut]:
    """This employee's orders, newest first (by placing time, then id), a page at a time. The
    `Link` header's `rel="next"` URL is the next page; the last page has none. A cursor is opaque
    and works only for the employee it was made for."""
    try:
        page = await order_page(
            uow, employee_id=who.employee_id, cursors=order_cursors(request), cursor=cursor, limit=limit
        )
    except BadCursor as error:
        log.info("order list cursor refused", employee_id=str(who.employee_id), reason=str(error))
        raise Problem.of(
            INVALID_CURSOR,
            "The cursor is not valid (changed, or made for someone else): start again without one.",
        ) from None
    if page.next_cursor is not None:
        next_url = f"/api/v1/orders?{urlencode({'limit': limit, 'cursor': page.next_cursor})}"
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return [OrderOut.of(placed) for placed in page.orders]


def order_cursors(request: Request) -> OrderCursors:
    settings: PortalSettings = request.app.state.settings
    return OrderCursors(settings.effective_session_secret)


@router.get(
    "/orders/{order_id}",
    responses=problem_responses(ErrorCode.NOT_SIGNED_IN, ErrorCode.ORDER_NOT_FOUND, INVALID_REQUEST),
)
async def get_order(order_id: uuid.UUID, who: SignedInEmployee, uow: Uow) -> OrderOut:
    return OrderOut.of(await order_of(uow, who.employee_id, order_id))
