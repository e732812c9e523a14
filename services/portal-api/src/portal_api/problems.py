"""Errors as RFC 9457 problem details (application/problem+json): the one place where a domain
error's code becomes an HTTP status and a problem `type` URI, with a clear `detail`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mport_shared.logging import get_logger
from starlette.exceptions import HTTPException as StarletteHTTPException

from portal_api.errors import DomainError, ErrorCode

PROBLEM_JSON = "application/problem+json"
# Absolute, so that a type is the same string wherever the portal runs (RFC 9457 §3.1.1
# recommends absolute URIs); mport.no is the portal, which serves each one's page at
# /problems/<slug> (pages.views), as does every local run.
PROBLEM_BASE = "https://mport.no/problems/"
log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProblemType:
    """A kind of refusal as clients see it: they switch on `uri`, never on `title`."""

    slug: str
    status: int
    title: str
    about: str  # what it means and what to do about it, for its page and the OpenAPI document

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.slug


# Codes of refusals made at the edge, by HTTP itself rather than by a use case.
INVALID_REQUEST = "request.invalid"
IDEMPOTENCY_KEY_REQUIRED = "request.idempotency-key-required"
INVALID_IDEMPOTENCY_KEY = "request.idempotency-key-invalid"
CSRF_FAILED = "request.csrf-failed"
BODY_TOO_LARGE = "request.body-too-large"
INVALID_CURSOR = "request.invalid-cursor"
RATE_LIMITED = "request.rate-limited"
TOO_MANY_EVENT_STREAMS = "request.too-many-event-streams"
PIPELINE_BUSY = "request.pipeline-busy"

PROBLEM_TYPES: dict[str, ProblemType] = {
    ErrorCode.NOT_SIGNED_IN: ProblemType(
        slug="not-signed-in", status=401, title="Not signed in",
        about="The request has no valid session (none, signed out, or ended for the employee). "
        "Sign in (Bruk jobbkonto) and try again.",
    ),
    ErrorCode.SESSION_EXPIRED: ProblemType(
        slug="session-expired", status=401, title="Session expired",
        about="The session timed out: SESSION_IDLE_TIMEOUT_S without a request, or "
        "SESSION_MAX_AGE_S since sign-in; `reason` is idle or max_age. Sign in again (Bruk jobbkonto).",
    ),
    ErrorCode.SELF_SERVICE_NOT_ACTIVATED: ProblemType(
        slug="self-service-not-activated", status=403, title="Self-service not activated",
        about="The employee has not confirmed their phone number yet (Bekreft telefonnummer), "
        "so they cannot order anything.",
    ),
    ErrorCode.NO_SUBSCRIPTION: ProblemType(
        slug="no-subscription", status=409, title="No subscription",
        about="The employee has no mobile subscription to order for.",
    ),
    ErrorCode.UNKNOWN_PRODUCT: ProblemType(
        slug="unknown-product", status=422, title="Unknown product",
        about="The product code is not in the catalog (GET /api/v1/catalog lists them).",
    ),
    ErrorCode.INVALID_DETAILS: ProblemType(
        slug="invalid-order-details", status=422, title="Invalid order details",
        about="The order's details are missing, unexpected or too long for this product: "
        "Bestill SIM takes delivery_name and delivery_address, Aktiver nytt SIM takes icc, "
        "everything else none.",
    ),
    ErrorCode.INVALID_ICC: ProblemType(
        slug="invalid-icc", status=422, title="Invalid ICC number",
        about="The SIM card's ICC number must be 19 or 20 digits 0-9 (spaces are removed) "
        "with a valid Luhn check digit.",
    ),
    ErrorCode.ALREADY_ACTIVE: ProblemType(
        slug="already-active", status=409, title="Already active",
        about="The plan is already the employee's plan, or the monthly add-on is already active.",
    ),
    ErrorCode.ALREADY_ORDERED: ProblemType(
        slug="already-ordered", status=409, title="Already ordered",
        about="An order that holds the same place is on its way (one open order of a monthly "
        "add-on, one plan change, one SIM order and one SIM activation at a time): wait until "
        "it is done.",
    ),
    ErrorCode.NOT_ALLOWED_BY_POLICY: ProblemType(
        slug="not-allowed-by-policy", status=403, title="Not allowed by policy",
        about="The company's mobile policy does not allow the employee to order this product.",
    ),
    ErrorCode.IDEMPOTENCY_KEY_REUSED: ProblemType(
        slug="idempotency-key-reused", status=422, title="Idempotency-Key reused",
        about="The Idempotency-Key was already used for a different order. Send a new key "
        "for a new order; repeat a key only to repeat the very same request.",
    ),
    ErrorCode.ORDER_NOT_FOUND: ProblemType(
        slug="order-not-found", status=404, title="Order not found",
        about="There is no such order among the signed-in employee's orders.",
    ),
    ErrorCode.DEDUCTION_NOT_ACCEPTED: ProblemType(
        slug="deduction-not-accepted", status=422, title="Salary deduction not accepted",
        about="The order costs the employee money, deducted from their salary, which needs their "
        "prior written agreement (arbeidsmiljøloven § 14-15): send accept_deduction with the "
        "amount_ore and the text the confirm dialog showed (`amount_ore` in the answer says how much).",
    ),
    ErrorCode.DEDUCTION_CHANGED: ProblemType(
        slug="deduction-changed", status=409, title="Salary deduction changed",
        about="The amount the employee accepted is not what the company's mobile policy says the "
        "order costs them now (the price or the policy changed): show the new amount "
        "(`amount_ore`) and ask again.",
    ),
    ErrorCode.SERVICE_NOT_ACTIVE: ProblemType(
        slug="service-not-active", status=409, title="Service not active",
        about="Only a monthly add-on active on the subscription can be ended (Avslutt).",
    ),
    ErrorCode.SERVICE_ALREADY_ENDING: ProblemType(
        slug="service-already-ending", status=409, title="Service already being ended",
        about="An order ending this add-on is already on its way: wait until it is done.",
    ),
    ErrorCode.VERIFICATION_NOT_FOUND: ProblemType(
        slug="verification-not-found", status=404, title="Verification not found",
        about="There is no such verification among the signed-in employee's.",
    ),
    ErrorCode.VERIFICATION_ALREADY_CONFIRMED: ProblemType(
        slug="verification-already-confirmed", status=409, title="Number already confirmed",
        about="The employee's current phone number is confirmed already: no code is sent. (When "
        "the administrator corrects the number, it must be confirmed again.)",
    ),
    ErrorCode.VERIFICATION_BUSY: ProblemType(
        slug="verification-busy", status=409, title="A code is on its way",
        about="Another request for a code committed at the same moment; use the code that arrives.",
    ),
    ErrorCode.VERIFICATION_WRONG_CODE: ProblemType(
        slug="wrong-code", status=400, title="Wrong code",
        about="The code is not the one sent; `tries_left` says how many more tries this code has "
        "(5 in all).",
    ),
    ErrorCode.VERIFICATION_TOO_MANY_TRIES: ProblemType(
        slug="too-many-tries", status=429, title="Too many wrong codes",
        about="The code was typed wrong 5 times and no longer works (`tries_left` is 0): ask for a new "
        "code, after Retry-After seconds (when the send limits allow one).",
    ),
    ErrorCode.VERIFICATION_CODE_EXPIRED: ProblemType(
        slug="code-expired", status=410, title="Code expired",
        about="The code was valid VERIFICATION_CODE_TTL_S (10 minutes) and that has passed: "
        "ask for a new code.",
    ),
    ErrorCode.VERIFICATION_CODE_REPLACED: ProblemType(
        slug="code-replaced", status=410, title="Code replaced",
        about="A newer code has been sent, which voids this one: type the newest code.",
    ),
    ErrorCode.VERIFICATION_CODE_DEAD: ProblemType(
        slug="code-dead", status=410, title="Code no longer valid",
        about="This code was typed wrong 5 times already: ask for a new code.",
    ),
    ErrorCode.VERIFICATION_CODE_USED: ProblemType(
        slug="code-used", status=410, title="Code already used",
        about="The code confirmed the number already; a code works once.",
    ),
    ErrorCode.VERIFICATION_NUMBER_CHANGED: ProblemType(
        slug="number-changed", status=410, title="Number changed",
        about="The administrator changed the employee's number after this code was sent to the old "
        "one: ask for a new code (it goes to the new number).",
    ),
    ErrorCode.VERIFICATION_TOO_MANY_CODES: ProblemType(
        slug="too-many-codes", status=429, title="Too many codes",
        about="At most 3 codes per number in 15 minutes and 10 in 24 hours: try again after "
        "Retry-After seconds (also `retry_after_s`).",
    ),
    ErrorCode.VERIFICATION_LOCKED: ProblemType(
        slug="verification-locked", status=423, title="Verification locked",
        about="100 wrong codes in a row: phone verification is locked for the employee until their "
        "mPort administrator unlocks it. (423 Locked, not 429: waiting does not help.)",
    ),
    ErrorCode.SMS_COUNTRY_NOT_ALLOWED: ProblemType(
        slug="sms-country-not-allowed", status=403, title="Country not allowed",
        about="The employee's number is in a country mPort does not send SMS to "
        "(SMS_ALLOWED_PREFIXES, Norway by default); the refusal is recorded for the administrator.",
    ),
    ErrorCode.SMS_BUDGET_SPENT: ProblemType(
        slug="sms-budget-spent", status=429, title="Daily SMS budget spent",
        about="The company has been sent SMS_DAILY_BUDGET_PER_COMPANY codes today (since midnight "
        "UTC): try again after Retry-After seconds; the refusal is recorded for the administrator.",
    ),
    ErrorCode.NOT_AN_ADMINISTRATOR: ProblemType(
        slug="not-an-administrator", status=403, title="Not an administrator",
        about="Only the company's mPort administrators may see or change its employees and "
        "read its audit log.",
    ),
    ErrorCode.EMPLOYEE_NOT_FOUND: ProblemType(
        slug="employee-not-found", status=404, title="Employee not found",
        about="There is no such employee in the administrator's company.",
    ),
    ErrorCode.INVALID_MSISDN: ProblemType(
        slug="invalid-msisdn", status=422, title="Invalid phone number",
        about="A phone number is 8 to 15 digits in international form (E.164, e.g. 4791234567); "
        "spaces, a leading + or 00 are removed, and 8 digits without a country prefix are a "
        "Norwegian number (47 is put in front).",
    ),
    ErrorCode.MSISDN_TAKEN: ProblemType(
        slug="msisdn-taken", status=409, title="Phone number taken",
        about="Another employee's subscription has this number: correct theirs first.",
    ),
    ErrorCode.EMPLOYEE_HAS_NO_SUBSCRIPTION: ProblemType(
        slug="employee-has-no-subscription", status=409, title="No subscription",
        about="The employee has no mobile subscription, so there is no number to correct.",
    ),
    ErrorCode.OPEN_ORDERS_ON_NUMBER: ProblemType(
        slug="open-orders-on-number", status=409, title="Open orders on the number",
        about="Orders on the employee's current number are still with the carrier, which "
        "provisions them on that number. Correct the number once they have completed or "
        "failed (each has a deadline).",
    ),
    ErrorCode.INVALID_PERIOD: ProblemType(
        slug="invalid-period", status=400, title="Invalid pay period",
        about="A pay period is a calendar month written YYYY-MM (e.g. 2026-12), month 01 to 12.",
    ),
    ErrorCode.PAYROLL_UNAVAILABLE: ProblemType(
        slug="payroll-unavailable", status=503, title="Payroll unavailable",
        about="The payroll-worker, which closes pay periods and makes the exports, did not answer "
        "(down, too slow, or not set up: PAYROLL_WORKER_URL, PAYROLL_API_TOKEN). Nothing was "
        "changed; try again in a while.",
    ),
    ErrorCode.PAYROLL_REFUSED: ProblemType(
        slug="payroll-refused", status=409, title="Refused by payroll",
        about="The payroll-worker refused the request; `detail` says why.",
    ),
    ErrorCode.INVALID_POLICY: ProblemType(
        slug="invalid-policy", status=422, title="Invalid mobile policy",
        about="The policy breaks a rule between its fields and the catalog; `errors` names each "
        "place (`loc`) and why (`msg`): a rule for an unknown product or category, a share "
        "without payer employee or in percent and øre at once, a plan rule other than "
        "not_allowed, plan_covered_up_to not a plan, a wage type missing or not 1 to 6 digits.",
    ),
    INVALID_REQUEST: ProblemType(
        slug="invalid-request", status=422, title="Invalid request",
        about="The request does not have the expected shape; `errors` says where and why.",
    ),
    IDEMPOTENCY_KEY_REQUIRED: ProblemType(
        slug="idempotency-key-required", status=400, title="Idempotency-Key required",
        about="Every order needs an Idempotency-Key header (for example a UUID), so that a "
        "retry never orders twice.",
    ),
    INVALID_IDEMPOTENCY_KEY: ProblemType(
        slug="invalid-idempotency-key", status=400, title="Invalid Idempotency-Key",
        about="The Idempotency-Key header holds a character it may not (a control or an "
        "invisible formatting character).",
    ),
    CSRF_FAILED: ProblemType(
        slug="csrf-failed", status=403, title="CSRF check failed",
        about="A cookie-authenticated POST, PUT, PATCH or DELETE must carry the X-CSRF-Token "
        "header with the value of the csrftoken cookie.",
    ),
    BODY_TOO_LARGE: ProblemType(
        slug="body-too-large", status=413, title="Request body too large",
        about="The request body is larger than the portal accepts (MAX_JSON_BODY_BYTES, "
        "MAX_FORM_BODY_BYTES); `max_body_bytes` gives the limit.",
    ),
    INVALID_CURSOR: ProblemType(
        slug="invalid-cursor", status=400, title="Invalid cursor",
        about="A list's cursor (orders, employees, audit log) was changed or made for someone "
        "else: start again without one, and follow the Link header's rel=\"next\" from there.",
    ),
    RATE_LIMITED: ProblemType(
        slug="rate-limited", status=429, title="Too many requests",
        about="Over ORDER_RATE_LIMIT (orders, per employee) or SIGN_IN_RATE_LIMIT (sign-in, per "
        "client address and route): try again after Retry-After seconds (also `retry_after_s`).",
    ),
    TOO_MANY_EVENT_STREAMS: ProblemType(
        slug="too-many-event-streams", status=429, title="Too many event streams",
        about="The employee already has MAX_EVENT_STREAMS_PER_EMPLOYEE live status streams open "
        "(one per open page): close one, or try again after Retry-After seconds.",
    ),
    PIPELINE_BUSY: ProblemType(
        slug="pipeline-busy", status=503, title="Orders are being held back",
        about="The order pipeline is behind (its queues or the portal's outbox hold more than "
        "INTAKE_MAX_BACKLOG messages) and did not catch up within INTAKE_WAIT_S. Nothing was "
        "stored: send the same request again after Retry-After seconds (also `retry_after_s`).",
    ),
}  # fmt: skip
PROBLEM_TYPES_BY_SLUG = {kind.slug: kind for kind in PROBLEM_TYPES.values()}


class Problem(Exception):
    """Raise at the edge (a view, a dependency, a middleware) to answer with a problem document.
    Use cases raise DomainError instead; `Problem.of` gives either code its registered type."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        code: str | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.type = type_
        self.code = code
        self.extensions = extensions

    @classmethod
    def of(cls, code: str, detail: str, **extensions: Any) -> Problem:
        kind = PROBLEM_TYPES[code]
        return cls(kind.status, detail, title=kind.title, type_=kind.uri, code=code, **extensions)


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    body = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        **problem.extensions,
    }
    if problem.status < 500:
        # The reason, for whoever wonders why a client was refused; details never carry secrets.
        log.info(
            "request refused",
            status=problem.status,
            code=problem.code,
            path=request.url.path,
            detail=problem.detail,
        )
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON)


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route that may answer with these problems: per status, the
    problem+json schema and each type it may carry (FastAPI's `responses=` argument)."""
    by_status: dict[int, list[ProblemType]] = {}
    for code in codes:
        kind = PROBLEM_TYPES[code]
        by_status.setdefault(kind.status, []).append(kind)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, kinds in sorted(by_status.items()):
        responses[status] = {
            "description": "\n".join(f"- {k.title} (`{k.uri}`): {k.about}" for k in kinds),
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": "#/components/schemas/ProblemDetails"},
                    "examples": {k.slug: {"summary": k.title, "value": _example(k)} for k in kinds},
                }
            },
        }
        if status == 429:
            responses[status]["headers"] = {
                "Retry-After": {
                    "description": "seconds until a try may succeed",
                    "schema": {"type": "integer"},
                }
            }
    return responses


def _example(kind: ProblemType) -> dict[str, Any]:
    return {"type": kind.uri, "title": kind.title, "status": kind.status, "detail": kind.about}


PROBLEM_DETAILS_SCHEMA: dict[str, Any] = {
    "title": "ProblemDetails",
    "description": "RFC 9457 problem details. Switch on `type`, never on `title` or `detail`.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "description": "the kind of problem"},
        "title": {"type": "string", "description": "a short summary, in English, for people"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong this time, for people"},
        "instance": {"type": "string", "description": "the path of the request"},
    },
    "additionalProperties": True,
}


def install_problem_handlers(app: FastAPI) -> None:
    _document_problem_details(app)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        response = problem_response(exc, request)
        retry_after_s = exc.extensions.get("retry_after_s")
        if isinstance(retry_after_s, int):
            response.headers["Retry-After"] = str(retry_after_s)
        return response

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> JSONResponse:
        response = problem_response(Problem.of(exc.code, exc.detail, **exc.extensions), request)
        if exc.retry_after_s is not None:
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()
        ]
        where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        return problem_response(
            Problem.of(INVALID_REQUEST, f"The request is not valid: {where}", errors=errors), request
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(Problem(exc.status_code, str(exc.detail)), request)


def _document_problem_details(app: FastAPI) -> None:
    """Put the ProblemDetails schema that `problem_responses` refers to into the OpenAPI document,
    and put the problem that this module answers an invalid request with in place of FastAPI's
    default 422 (HTTPValidationError, which the portal never sends)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["ProblemDetails"] = PROBLEM_DETAILS_SCHEMA
            invalid = problem_responses(INVALID_REQUEST)[422]
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    response = operation.get("responses", {}).get("422", {})
                    if "HTTPValidationError" in str(response.get("content", "")):
                        operation["responses"]["422"] = invalid
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
