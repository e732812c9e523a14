"""The employee's pages: sign-in, Hjem, Abonnement with the self-service box, Mine bestillinger, Policy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from mport_shared.events import Billing, EmployeeCharge, OrderFailureCode, OrderKind
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal_api.auth.sessions import SessionEnd, SessionRefused
from portal_api.catalog.products import Product
from portal_api.catalog.service import Offer, offers_for
from portal_api.deps import (
    SESSION_NOTICE,
    SIGNED_OUT,
    SignedIn,
    SignedInEmployee,
    Uow,
    forget_session,
    signed_in,
)
from portal_api.employees import signed_in_employee
from portal_api.errors import DomainError, NotSignedIn
from portal_api.i18n import Translator, pick_language
from portal_api.models import Employee, Order
from portal_api.orders.domain import OPEN_STATUSES, OrderStatus
from portal_api.orders.listing import BadCursor, OrderCursors, order_page
from portal_api.orders.service import PlacedOrder, order_of, orders_of
from portal_api.pages.rendering import (
    NEXT_PARAM,
    render,
    safe_next,
    sign_in_redirect,
)
from portal_api.problems import PROBLEM_TYPES, PROBLEM_TYPES_BY_SLUG, Problem, problem_response
from portal_api.subscriptions.views import MeOut, describe
from portal_api.unit_of_work import UnitOfWork

router = APIRouter(include_in_schema=False)

try:
    OSLO: ZoneInfo | None = ZoneInfo("Europe/Oslo")
except ZoneInfoNotFoundError:  # a slim image without tzdata: show UTC rather than fail
    OSLO = None

ButtonState = Literal["available", "pending", "active", "blocked"]
SIGN_IN_NOTICES = frozenset({SIGNED_OUT, *SessionEnd})
ORDERS_PATH = "/bestillinger"
ORDERS_CURSOR_PARAM = "etter"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductRow:
    """One orderable product as the self-service box shows it: the product, and where this
    employee stands with it."""

    product: Product
    price: str
    you_pay: str
    deduction: str | None  # what the confirm dialog states, when the employee pays anything
    deduction_ore: int  # the amount it states, which the employee's Ok accepts
    state: ButtonState
    blocked_reason: str | None
    pending_order_id: str | None
    pending: OrderProgress | None  # the open order's progress, while state is "pending"
    last_failure: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderProgress:
    """Where an open order is: stored (received) or with the carrier (submitted), and by when."""

    status: str
    carrier_state: str | None
    expected_at: str | None  # ISO 8601, for the page script
    expected: str | None  # dd.mm.yyyy, Norwegian time

    @classmethod
    def of(cls, order: Order) -> OrderProgress:
        expected = order.expected_completion_at if order.status == OrderStatus.SUBMITTED else None
        return cls(
            status=order.status,
            carrier_state=order.carrier_state,
            expected_at=expected.isoformat() if expected else None,
            expected=_local_date(expected) if expected else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRow:
    id: str
    created: str
    product_name: str
    product_code: str
    status: str
    status_label: str
    progress: OrderProgress
    failure_reason: str | None  # in words for the employee
    charge: str
    details: str


async def _signed_in_or_none(request: Request, uow: UnitOfWork) -> Employee | None:
    """For the sign-in page, which anyone may see (it says so when someone is signed in)."""
    try:
        return await signed_in_employee(uow, (await signed_in(request)).employee_id)
    except NotSignedIn as refused:
        forget_session(request, refused)
        return None


def charge_text(t: Translator, charge: EmployeeCharge) -> str | None:
    """What the employee pays, e.g. "149,00 kr" or "50,00 kr per måned"; None when the employer pays."""
    if charge.amount_ore == 0:
        return None
    amount = t.kr(charge.amount_ore)
    return t("charge.per_month", amount=amount) if charge.billing is Billing.MONTHLY else amount


def _you_pay(t: Translator, offer: Offer) -> str:
    if not offer.decision.allowed:
        return t("product.not_allowed")
    deduction = charge_text(t, offer.decision.charge)
    return t("charge.deduction", amount=deduction) if deduction else t("charge.employer")


def product_rows(t: Translator, offers: list[Offer], orders: list[PlacedOrder]) -> list[ProductRow]:
    latest: dict[str, Order] = {}
    for placed in orders:  # newest first; an order ending a service is the active list's (endings)
        if placed.order.action != "delete":
            latest.setdefault(placed.order.product_code, placed.order)
    rows = []
    for offer in offers:
        product, allowed = offer.product, offer.decision.allowed
        last = latest.get(product.code)
        state: ButtonState
        if last is not None and last.status in OPEN_STATUSES:
            state = "pending"
        elif offer.active:
            state = "active"
        elif not allowed:
            state = "blocked"
        else:
            state = "available"
        failed = last is not None and last.status == OrderStatus.FAILED and state != "active"
        pending = last is not None and state == "pending"
        rows.append(
            ProductRow(
                product=product,
                price=t.kr(product.price_ore),
                you_pay=_you_pay(t, offer),
                deduction=charge_text(t, offer.decision.charge) if allowed else None,
                deduction_ore=offer.decision.charge.amount_ore if allowed else 0,
                state=state,
                blocked_reason=t("product.not_allowed") if not allowed else None,
                pending_order_id=str(last.id) if pending and last is not None else None,
                pending=OrderProgress.of(last) if pending and last is not None else None,
                last_failure=failure_text(t, last) if failed and last is not None else None,
            )
        )
    return rows


def failure_text(t: Translator, order: Order) -> str:
    """Why an order failed, in words an employee understands: the carrier's own reason when it
    refused the order, ours when it ran out of time."""
    if order.failure_code in (OrderFailureCode.CARRIER_DEADLINE_PASSED, OrderFailureCode.CARRIER_UNREACHABLE):
        return t(f"failure.{order.failure_code}")
    return order.failure_reason or ""


def _local_time(moment: datetime) -> str:
    return (moment.astimezone(OSLO) if OSLO else moment).strftime("%d.%m.%Y %H:%M")


def _local_date(moment: datetime) -> str:
    return (moment.astimezone(OSLO) if OSLO else moment).strftime("%d.%m.%Y")


def order_rows(t: Translator, orders: list[PlacedOrder]) -> list[OrderRow]:
    return [
        OrderRow(
            id=str(order.id),
            created=_local_time(order.created_at),
            product_name=t("orders.ending", name=product.name) if order.action == "delete" else product.name,
            product_code=order.product_code,
            status=order.status,
            status_label=t(f"status.{order.status}"),
            progress=OrderProgress.of(order),
            failure_reason=failure_text(t, order) if order.status == OrderStatus.FAILED else None,
            charge=charge_text(
                t, EmployeeCharge(amount_ore=order.employee_charge_ore, billing=Billing(order.billing))
            )
            or t("orders.none"),
            details=", ".join(order.details.values()),
        )
        for order, product in ((placed.order, placed.product) for placed in orders)
    ]


@router.get("/")
async def home(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    employee = await signed_in_employee(uow, who.employee_id)
    return render(request, "home.html", {"me": await describe(uow, employee)}, employee=employee)


@router.get("/logg-inn")
async def sign_in_page(request: Request, uow: Uow) -> Response:
    """ "Bruk jobbkonto", and in local mode the development sign-in listing the demo people."""
    people: list[Employee] = []
    if request.app.state.settings.is_local:
        # By company, so whoever tries one company against the other sees whose people are whose.
        people = list(await uow.employees.listed(50))
    signed_in_now = await _signed_in_or_none(request, uow)
    # Why the visitor is here (signed out, a session that ended): said once, then forgotten.
    notice = request.session.pop(SESSION_NOTICE, None)
    return render(
        request,
        "login.html",
        {
            "people": people,
            "next": safe_next(request.query_params.get(NEXT_PARAM)),
            "employee_signed_in": signed_in_now,
            "notice": notice if notice in SIGN_IN_NOTICES and signed_in_now is None else None,
        },
    )


@router.get("/abonnement")
async def subscription_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    employee = await signed_in_employee(uow, who.employee_id)
    t = Translator(pick_language(request)[0])
    me: MeOut = await describe(uow, employee)
    offers = await offers_for(uow, employee)
    placed = await orders_of(uow, employee.id)
    rows = product_rows(t, offers.offers, placed)
    by_kind: dict[str, list[ProductRow]] = {}
    for row in rows:
        by_kind.setdefault(row.product.kind, []).append(row)
    plan = next((r for r in by_kind.get(OrderKind.PLAN, []) if r.state == "active"), None)
    sims = me.subscription.sim_cards if me.subscription else []
    main_sim = next((s for s in sims if s.is_main), None)
    catalog = offers.catalog
    # A monthly add-on can be ended (Avslutt); the main SIM's service is the subscription's own.
    endable = {
        code
        for code in (s.product_code for s in (me.subscription.active_services if me.subscription else []))
        if (p := catalog.get(code)) is not None and p.is_monthly_addon and p.category != "sim"
    }
    endings = {
        o.order.product_code: str(o.order.id)
        for o in placed
        if o.order.action == "delete" and o.order.status in OPEN_STATUSES
    }
    return render(
        request,
        "abonnement.html",
        {
            "me": me,
            "services": by_kind.get(OrderKind.ADDON, []),
            "plans": by_kind.get(OrderKind.PLAN, []),
            "current_plan": plan,
            "sim_actions": by_kind.get(OrderKind.SIM_ACTIVATION, []) + by_kind.get(OrderKind.SIM_ORDER, []),
            "main_sim": main_sim,
            "other_sims": [s for s in sims if s is not main_sim],
            "endable": endable,
            "endings": endings,
        },
        employee=employee,
    )


@router.get("/bestillinger")
async def orders_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    """Mine bestillinger, newest first, a page at a time (`?etter=<cursor>` for older ones)."""
    employee = await signed_in_employee(uow, who.employee_id)
    t = Translator(pick_language(request)[0])
    cursor = request.query_params.get(ORDERS_CURSOR_PARAM)
    try:
        page = await order_page(
            uow,
            employee_id=employee.id,
            cursors=OrderCursors(request.app.state.settings.effective_session_secret),
            cursor=cursor,
        )
    except BadCursor:
        return render(
            request,
            "error.html",
            {"message_key": "orders.bad_page", "back_href": ORDERS_PATH, "back_key": "orders.newest"},
            employee=employee,
            status_code=400,
        )
    older = None
    if page.next_cursor is not None:
        older = f"{ORDERS_PATH}?{urlencode({ORDERS_CURSOR_PARAM: page.next_cursor})}"
    return render(
        request,
        "bestillinger.html",
        {
            "orders": order_rows(t, page.orders),
            "first_page": cursor is None,
            "older_href": older,
            "newest_href": ORDERS_PATH if cursor is not None else None,
        },
        employee=employee,
    )


@router.get(ORDERS_PATH + "/{order_id}")
async def one_order_page(request: Request, order_id: uuid.UUID, who: SignedInEmployee, uow: Uow) -> Response:
    """One of the employee's orders, as Mine bestillinger shows it (Mine lønnstrekk links each line
    here); another employee's order is a 404, as one that does not exist."""
    employee = await signed_in_employee(uow, who.employee_id)
    t = Translator(pick_language(request)[0])
    try:
        placed = await order_of(uow, employee.id, order_id)
    except DomainError:
        return render(
            request,
            "error.html",
            {"message_key": "orders.not_found", "back_href": ORDERS_PATH, "back_key": "orders.newest"},
            employee=employee,
            status_code=404,
        )
    return render(
        request,
        "bestillinger.html",
        {
            "orders": order_rows(t, [placed]),
            "first_page": False,
            "older_href": None,
            "newest_href": ORDERS_PATH,
        },
        employee=employee,
    )


@dataclass(frozen=True, slots=True)
class PolicyLine:
    name: str
    price: str
    payer: str


@router.get("/policy")
async def policy_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    """The company's mobile policy in words: who pays what, worked out for each product."""
    employee = await signed_in_employee(uow, who.employee_id)
    t = Translator(pick_language(request)[0])
    offers = await offers_for(uow, employee)
    ceiling = offers.covered_plan

    def payer(offer: Offer) -> str:
        charge = offer.decision.charge
        if not offer.decision.allowed:
            return t("policy.not_allowed")
        amount = charge_text(t, charge)
        if amount is None:
            return t("policy.employer")
        if charge.amount_ore >= offer.product.price_ore:
            return t("policy.employee_full", amount=amount)
        return t("policy.employee_share", amount=amount, price=t.kr(offer.product.price_ore))

    def lines(kinds: set[OrderKind]) -> list[PolicyLine]:
        return [
            PolicyLine(o.product.name, t.kr(o.product.price_ore), payer(o))
            for o in offers.offers
            if o.product.kind in kinds
        ]

    return render(
        request,
        "policy.html",
        {
            "company": employee.company.name,
            "ceiling": ceiling.name if ceiling else None,
            "services": lines({OrderKind.ADDON, OrderKind.SIM_ORDER, OrderKind.SIM_ACTIVATION}),
            "plans": lines({OrderKind.PLAN}),
        },
        employee=employee,
    )


async def _info_page(request: Request, who: SignedIn, uow: UnitOfWork, template: str) -> Response:
    employee = await signed_in_employee(uow, who.employee_id)
    admins = await uow.employees.admins_of(employee.company_id)
    return render(request, template, {"admins": list(admins)}, employee=employee)


@router.get("/terminal")
async def terminal_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    return await _info_page(request, who, uow, "terminal.html")


@router.get("/support")
async def support_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    return await _info_page(request, who, uow, "support.html")


@router.get("/kontakt")
async def contact_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    return await _info_page(request, who, uow, "kontakt.html")


@router.get("/problems")
async def problem_types_page(request: Request) -> Response:
    """What each problem `type` the API answers with means: the page its URI names."""
    return render(request, "problems.html", {"kinds": list(PROBLEM_TYPES.values()), "only": None})


@router.get("/problems/{slug}")
async def problem_type_page(request: Request, slug: str) -> Response:
    kind = PROBLEM_TYPES_BY_SLUG.get(slug)
    if kind is None:
        return render(request, "error.html", {"message_key": "error.not_found"}, status_code=404)
    return render(request, "problems.html", {"kinds": [kind], "only": kind})


def install_page_errors(app: FastAPI) -> None:
    """A browser asking for a page that does not exist gets a page, and one asking for a page
    while not signed in the sign-in page; API clients keep problem+json."""

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        forget_session(request, exc)
        if request.url.path.startswith("/api/"):
            reason = {"reason": exc.why.value} if isinstance(exc, SessionRefused) else {}
            return problem_response(Problem.of(exc.code, exc.detail, **reason), request)
        return sign_in_redirect(request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        wants_page = "text/html" in request.headers.get("accept", "")
        if wants_page and not request.url.path.startswith("/api/") and exc.status_code == 404:
            return render(request, "error.html", {"message_key": "error.not_found"}, status_code=404)
        return problem_response(Problem(exc.status_code, str(exc.detail)), request)
