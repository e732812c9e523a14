"""Bekreft telefonnummer (the seed guide's steps 9-12): plain forms that post and come back (so the
page works without JavaScript), and the SMS's progress live from the event stream (portal.js)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from portal_api.deps import SignedInEmployee, Uow, require_csrf
from portal_api.employees import signed_in_employee
from portal_api.errors import DomainError, ErrorCode, NotSignedIn
from portal_api.pages.rendering import render
from portal_api.pages.views import OSLO
from portal_api.verifications.domain import DeliveryStatus
from portal_api.verifications.service import confirm_code, page_state, request_code
from portal_api.verifications.views import Keeper

router = APIRouter(include_in_schema=False)

PAGE_PATH = "/bekreft-telefonnummer"
# What the last form post came to, said once on the page it returns to (never the code).
_FLASH = "verify_flash"

# The page's words for each refusal (i18n keys verify.problem.<slug>).
_WORDS = {
    ErrorCode.VERIFICATION_WRONG_CODE: "verify.problem.wrong_code",
    ErrorCode.VERIFICATION_TOO_MANY_TRIES: "verify.problem.too_many_tries",
    ErrorCode.VERIFICATION_CODE_EXPIRED: "verify.problem.expired",
    ErrorCode.VERIFICATION_CODE_REPLACED: "verify.problem.replaced",
    ErrorCode.VERIFICATION_CODE_DEAD: "verify.problem.dead",
    ErrorCode.VERIFICATION_CODE_USED: "verify.problem.used",
    ErrorCode.VERIFICATION_NUMBER_CHANGED: "verify.problem.number_changed",
    ErrorCode.VERIFICATION_TOO_MANY_CODES: "verify.problem.too_many_codes",
    ErrorCode.VERIFICATION_LOCKED: "verify.problem.locked",
    ErrorCode.SMS_COUNTRY_NOT_ALLOWED: "verify.problem.country",
    ErrorCode.SMS_BUDGET_SPENT: "verify.problem.budget",
    ErrorCode.VERIFICATION_ALREADY_CONFIRMED: "verify.confirmed",
    ErrorCode.VERIFICATION_NOT_FOUND: "verify.problem.expired",
    ErrorCode.VERIFICATION_BUSY: "verify.problem.busy",
    ErrorCode.NO_SUBSCRIPTION: "sub.no_subscription",
}


def _flash(request: Request, key: str, *, where: str, **values: Any) -> None:
    """`where`: the form it answers, "send" or "code", beside which the page says it."""
    request.session[_FLASH] = {"key": key, "where": where, "values": values}


def _flash_refusal(request: Request, refusal: DomainError, *, where: str) -> None:
    values: dict[str, Any] = {}
    if "tries_left" in refusal.extensions:
        values["tries"] = refusal.extensions["tries_left"]
    if refusal.retry_after_s is not None:
        values["wait"] = _wait_words(refusal.retry_after_s)
    _flash(request, _WORDS.get(refusal.code, "verify.problem.generic"), where=where, **values)


def _wait_words(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if minutes >= 60:
        return f"{minutes // 60} t {minutes % 60} min"
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _clock_time(moment: datetime) -> str:
    return (moment.astimezone(OSLO) if OSLO else moment).strftime("%H:%M")


def _back() -> RedirectResponse:
    return RedirectResponse(PAGE_PATH, status_code=303)


@router.get(PAGE_PATH)
async def verify_page(request: Request, who: SignedInEmployee, uow: Uow, keeper: Keeper) -> Response:
    employee = await signed_in_employee(uow, who.employee_id)
    state = await page_state(uow, employee, keeper)
    admins = await uow.employees.admins_of(employee.company_id)
    flash = request.session.pop(_FLASH, None)
    wait = None
    refusal = state.refusal
    if refusal is not None and refusal.retry_after_s is not None:
        wait = _wait_words(refusal.retry_after_s)
    open_code = state.open_code
    settings = request.app.state.settings
    return render(
        request,
        "bekreft.html",
        {
            "msisdn": employee.subscription.msisdn if employee.subscription else None,
            "confirmed": employee.phone_verified_at is not None,
            "self_service_active": employee.self_service_active,
            "admins": list(admins),
            "open_code": open_code,
            "delivery": DeliveryStatus(open_code.delivery_status) if open_code else None,
            "tries_left": keeper.rules.max_tries_per_code - open_code.attempts if open_code else None,
            "expires_local": _clock_time(open_code.expires_at) if open_code else None,
            "can_send": refusal is None,
            "refusal_key": _WORDS.get(refusal.code, "verify.problem.generic") if refusal else None,
            "wait": wait,
            "flash": flash if isinstance(flash, dict) else None,
            "simulator_url": settings.sms_messages_url if settings.is_local else None,
        },
        employee=employee,
    )


@router.post(f"{PAGE_PATH}/send", dependencies=[Depends(require_csrf)])
async def send_code(request: Request, who: SignedInEmployee, uow: Uow, keeper: Keeper) -> Response:
    try:
        await request_code(uow, employee_id=who.employee_id, keeper=keeper)
    except NotSignedIn:
        raise  # the sign-in page, as for every page
    except DomainError as refusal:
        _flash_refusal(request, refusal, where="send")
    return _back()


@router.post(f"{PAGE_PATH}/bekreft", dependencies=[Depends(require_csrf)])
async def confirm_from_form(
    request: Request,
    who: SignedInEmployee,
    uow: Uow,
    keeper: Keeper,
    verification_id: Annotated[str, Form(max_length=64)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        target = uuid.UUID(verification_id)
    except ValueError:
        target = uuid.UUID(int=0)  # nobody's: not found, once the session is checked
    try:
        await confirm_code(
            uow, employee_id=who.employee_id, verification_id=target, typed=code.strip(), keeper=keeper
        )
    except NotSignedIn:
        raise  # the sign-in page, as for every page
    except DomainError as refusal:
        _flash_refusal(request, refusal, where="code")
    return _back()
