"""Phone verification API: ask for a code by SMS (202), type it (200, or a problem), read its state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from portal_api.deps import SignedInEmployee, Uow, require_csrf
from portal_api.errors import ErrorCode
from portal_api.models import Verification
from portal_api.problems import BODY_TOO_LARGE, CSRF_FAILED, INVALID_REQUEST, problem_responses
from portal_api.verifications.domain import DeliveryStatus, VerificationState
from portal_api.verifications.service import CodeKeeper, confirm_code, request_code, verification_of

router = APIRouter(prefix="/api/v1", tags=["verifications"], dependencies=[Depends(require_csrf)])


def code_keeper(request: Request) -> CodeKeeper:
    keeper: CodeKeeper = request.app.state.code_keeper
    return keeper


Keeper = Annotated[CodeKeeper, Depends(code_keeper)]


class VerificationCreated(BaseModel):
    id: uuid.UUID
    expires_at: datetime


class VerificationOut(BaseModel):
    id: uuid.UUID
    msisdn: str = Field(description="The number the code was sent to")
    state: VerificationState
    delivery_status: DeliveryStatus = Field(description="How far the SMS got, as the gateway reported it")
    delivery_reason: str | None = Field(description="Why the SMS failed, in words, when it did")
    delivery_reason_code: str | None = Field(
        description="Why it failed, for clients to switch on: rejected, undelivered, expired, not_allowed"
    )
    tries_left: int
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None

    @classmethod
    def of(cls, verification: Verification, *, max_tries: int) -> VerificationOut:
        return cls(
            id=verification.id,
            msisdn=verification.msisdn,
            state=VerificationState(verification.state),
            delivery_status=DeliveryStatus(verification.delivery_status),
            delivery_reason=verification.delivery_reason,
            delivery_reason_code=verification.delivery_reason_code,
            tries_left=max(0, max_tries - verification.attempts),
            created_at=verification.created_at,
            expires_at=verification.expires_at,
            confirmed_at=verification.confirmed_at,
        )


class ConfirmRequest(BaseModel):
    # Checked as typed by the domain (6 ASCII digits); anything else is simply a wrong code.
    code: Annotated[str, Field(min_length=1, max_length=20)]


class ConfirmedOut(BaseModel):
    id: uuid.UUID
    state: VerificationState
    phone_verified: bool
    self_service_active: bool = Field(
        description="Whether self-service is now on: it is when the administrator allows it"
    )


_REQUEST_REFUSALS = (
    ErrorCode.NOT_SIGNED_IN,
    CSRF_FAILED,
    ErrorCode.NO_SUBSCRIPTION,
    ErrorCode.VERIFICATION_ALREADY_CONFIRMED,
    ErrorCode.VERIFICATION_BUSY,
    ErrorCode.VERIFICATION_LOCKED,
    ErrorCode.SMS_COUNTRY_NOT_ALLOWED,
    ErrorCode.VERIFICATION_TOO_MANY_CODES,
    ErrorCode.SMS_BUDGET_SPENT,
)


@router.post(
    "/verifications",
    status_code=202,
    response_model=VerificationCreated,
    responses={
        202: {"description": "Accepted: the code's HMAC and its VerificationRequested event are committed"},
        **problem_responses(*_REQUEST_REFUSALS, BODY_TOO_LARGE),
    },
)
async def create_verification(who: SignedInEmployee, uow: Uow, keeper: Keeper) -> JSONResponse:
    """Send a one-time code by SMS to the employee's registered number (never one typed in); a
    code sent before stops working (code-replaced)."""
    verification = await request_code(uow, employee_id=who.employee_id, keeper=keeper)
    body = VerificationCreated(id=verification.id, expires_at=verification.expires_at)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/api/v1/verifications/{verification.id}"},
    )


@router.post(
    "/verifications/{verification_id}/confirm",
    responses=problem_responses(
        ErrorCode.NOT_SIGNED_IN,
        CSRF_FAILED,
        ErrorCode.VERIFICATION_NOT_FOUND,
        ErrorCode.VERIFICATION_WRONG_CODE,
        ErrorCode.VERIFICATION_TOO_MANY_TRIES,
        ErrorCode.VERIFICATION_CODE_EXPIRED,
        ErrorCode.VERIFICATION_CODE_REPLACED,
        ErrorCode.VERIFICATION_CODE_DEAD,
        ErrorCode.VERIFICATION_CODE_USED,
        ErrorCode.VERIFICATION_NUMBER_CHANGED,
        ErrorCode.VERIFICATION_LOCKED,
        INVALID_REQUEST,
        BODY_TOO_LARGE,
    ),
)
async def confirm_verification(
    verification_id: uuid.UUID, body: ConfirmRequest, who: SignedInEmployee, uow: Uow, keeper: Keeper
) -> ConfirmedOut:
    """The code from the SMS: right, and the number is confirmed (and self-service on, if the
    administrator allows it); wrong, a 400 with `tries_left`."""
    confirmed = await confirm_code(
        uow, employee_id=who.employee_id, verification_id=verification_id, typed=body.code, keeper=keeper
    )
    return ConfirmedOut(
        id=confirmed.verification.id,
        state=VerificationState(confirmed.verification.state),
        phone_verified=True,
        self_service_active=confirmed.self_service_active,
    )


@router.get(
    "/verifications/{verification_id}",
    responses=problem_responses(ErrorCode.NOT_SIGNED_IN, ErrorCode.VERIFICATION_NOT_FOUND, INVALID_REQUEST),
)
async def get_verification(
    verification_id: uuid.UUID, who: SignedInEmployee, uow: Uow, keeper: Keeper
) -> VerificationOut:
    verification = await verification_of(uow, who.employee_id, verification_id)
    return VerificationOut.of(verification, max_tries=keeper.rules.max_tries_per_code)
