"""The internal HTTP API the portal's admin pages call (bearer token PAYROLL_API_TOKEN): a
company's pay periods, closing one, and exporting one. Errors are problem details (RFC 9457)."""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import SecretStr

from payroll_worker.exports import UnknownFormat
from payroll_worker.payroll import BadPeriod, Payroll, PeriodNotStarted

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://mport.no/problems/"


class Problem(Exception):
    def __init__(self, *, slug: str, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.slug, self.status, self.title, self.detail = slug, status, title, detail


def problem_response(problem: Problem) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
    return JSONResponse(
        {
            "type": PROBLEM_BASE + problem.slug,
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
        },
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def internal_api(app: FastAPI, payroll: Payroll, *, token: SecretStr | None) -> None:
    """Mount /internal/companies/{company_id}/periods… on the worker's app."""

    def authorized(request: Request) -> None:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        expected = token.get_secret_value() if token else ""
        if (
            not expected
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(value.encode(), expected.encode())
        ):
            raise Problem(
                slug="payroll-api-unauthorized",
                status=401,
                title="Not authorized",
                detail="The internal payroll API needs the bearer token PAYROLL_API_TOKEN.",
            )

    router = APIRouter(prefix="/internal/companies/{company_id}", dependencies=[Depends(authorized)])

    @router.get("/periods")
    async def periods(company_id: uuid.UUID) -> list[dict[str, object]]:
        return [
            {
                "period": p.period,
                "status": p.status,
                "closed_at": p.closed_at.isoformat() if p.closed_at else None,
                "lines": p.lines,
                "total_ore": p.total_ore,
            }
            for p in await payroll.periods(company_id)
        ]

    @router.post("/periods/{period}/close")
    async def close(company_id: uuid.UUID, period: str) -> dict[str, object]:
        result = await payroll.close(company_id, period)
        return {
            "period": result.period,
            "status": "closed",
            "closed_at": result.closed_at.isoformat(),
            "recurring_lines_generated": result.recurring_lines_generated,
        }

    @router.get("/periods/{period}/export")
    async def export(
        company_id: uuid.UUID, period: str, fmt: Annotated[str, Query(alias="format")] = "json"
    ) -> Response:
        file = await payroll.export(company_id, period, fmt)
        return Response(
            file.body,
            media_type=file.media_type,
            headers={"Content-Disposition": f'attachment; filename="{file.filename}"'},
        )

    app.include_router(router)

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(BadPeriod)
    async def _bad_period(_request: Request, exc: BadPeriod) -> JSONResponse:
        return problem_response(
            Problem(slug="payroll-bad-period", status=400, title="Not a pay period", detail=str(exc))
        )

    @app.exception_handler(PeriodNotStarted)
    async def _not_started(_request: Request, exc: PeriodNotStarted) -> JSONResponse:
        return problem_response(
            Problem(
                slug="payroll-period-not-started",
                status=409,
                title="The period has not begun",
                detail=str(exc),
            )
        )

    @app.exception_handler(UnknownFormat)
    async def _bad_format(_request: Request, exc: UnknownFormat) -> JSONResponse:
        return problem_response(
            Problem(
                slug="payroll-unknown-export-format",
                status=400,
                title="Unknown export format",
                detail=str(exc),
            )
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors())
        return problem_response(
            Problem(slug="request-invalid", status=400, title="Invalid request", detail=where)
        )
