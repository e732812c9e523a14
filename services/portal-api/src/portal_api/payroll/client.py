"""The adapter for the payroll-worker's internal HTTP API (periods, close, export), always for one
company, with the bearer token PAYROLL_API_TOKEN. Its failures are typed: PayrollUnavailable (down,
too slow, refusing our token, an answer we cannot read) and PayrollRefused (it refused the request
itself, with its problem's detail)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from portal_api.payroll.domain import ExportFormat


class PayrollUnavailable(Exception):
    """The payroll-worker could not be asked (down, timed out, misconfigured, a bad answer)."""


class PayrollRefused(Exception):
    """The payroll-worker answered the request with a 4xx problem (other than our token's 401)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class PeriodStatus(BaseModel):
    period: str
    status: str  # open | closed
    closed_at: datetime | None = None
    lines: int = 0
    total_ore: int = 0


class ClosedPeriod(BaseModel):
    period: str
    status: str
    closed_at: datetime | None = None
    recurring_lines_generated: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportFile:
    content: bytes
    media_type: str
    filename: str


_EXTENSIONS = {ExportFormat.JSON: "json", ExportFormat.VISMA: "csv", ExportFormat.TRIPLETEX: "csv"}


def default_filename(company_id: uuid.UUID, period: str, export_format: ExportFormat) -> str:
    return f"lonnstrekk-{period}-{export_format.value}-{company_id}.{_EXTENSIONS[export_format]}"


@dataclass(frozen=True, slots=True)
class PayrollWorkerClient:
    """Over an httpx client whose base URL is PAYROLL_WORKER_URL and whose headers carry the
    token (payroll.client.make_http); tests give it a client of their own."""

    http: httpx.AsyncClient

    async def periods(self, company_id: uuid.UUID) -> list[PeriodStatus]:
        response = await self._call("GET", f"/internal/companies/{company_id}/periods")
        body = self._json(response)
        if not isinstance(body, list):
            raise PayrollUnavailable("the payroll-worker's period list is not a list")
        try:
            return [PeriodStatus.model_validate(item) for item in body]
        except ValidationError as error:
            raise PayrollUnavailable(f"the payroll-worker's period list is not readable: {error}") from error

    async def close(self, company_id: uuid.UUID, period: str) -> ClosedPeriod:
        response = await self._call("POST", f"/internal/companies/{company_id}/periods/{period}/close")
        try:
            return ClosedPeriod.model_validate(self._json(response))
        except ValidationError as error:
            raise PayrollUnavailable(f"the payroll-worker's close answer is not readable: {error}") from error

    async def export(self, company_id: uuid.UUID, period: str, export_format: ExportFormat) -> ExportFile:
        response = await self._call(
            "GET",
            f"/internal/companies/{company_id}/periods/{period}/export",
            params={"format": export_format.value},
        )
        media_type = response.headers.get("content-type", "application/octet-stream")
        filename = _filename(response.headers.get("content-disposition", "")) or default_filename(
            company_id, period, export_format
        )
        return ExportFile(content=response.content, media_type=media_type, filename=filename)

    async def _call(self, method: str, path: str, *, params: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self.http.request(method, path, params=params)
        except httpx.HTTPError as error:
            raise PayrollUnavailable(f"the payroll-worker did not answer: {type(error).__name__}") from error
        if response.status_code == 200:
            return response
        detail = _detail(response)
        if response.status_code in (401, 403):
            # Our token is wrong or missing: a set-up fault, not the administrator's.
            raise PayrollUnavailable(f"the payroll-worker refused the portal's token: {detail}")
        if 400 <= response.status_code < 500:
            raise PayrollRefused(response.status_code, detail)
        raise PayrollUnavailable(f"the payroll-worker answered {response.status_code}: {detail}")

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as error:
            raise PayrollUnavailable("the payroll-worker's answer is not JSON") from error


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or "")[:200]
    return ""


def _filename(disposition: str) -> str | None:
    """The filename of `attachment; filename=…`, if it is a plain one (no path, no quotes inside)."""
    for part in disposition.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "filename":
            value = value.strip().strip('"')
            if value and all(c.isalnum() or c in "-_." for c in value):
                return value
    return None


def make_http(
    *, base_url: str, token: str, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout_s,
        transport=transport,
        headers={"Authorization": f"Bearer {token}"},
    )
