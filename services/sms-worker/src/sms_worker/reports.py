"""Kannel's delivery reports: `GET /dlr?token=…&id=…&type=%d&reply=%A`, as the dlr-url we gave
with each SMS. A report without this run's token is refused, so nobody else can claim an SMS
delivered; the same report twice publishes once."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from mport_shared.logging import get_logger
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from sms_worker import metrics
from sms_worker.store import ReportResult, Store

log = get_logger(__name__)

DLR_PATH = "/dlr"

Clock = Callable[[], datetime]


def dlr_endpoint(
    store: Store, *, secret: str, clock: Clock = lambda: datetime.now(UTC)
) -> Callable[[Request], Awaitable[Response]]:
    expected = secret.encode()

    async def delivery_report(request: Request) -> Response:
        params = request.query_params
        if not hmac.compare_digest(params.get("token", "").encode(), expected):
            metrics.REPORTS.labels("refused").inc()
            log.warning("delivery report with a wrong or missing token refused", client=_client(request))
            return PlainTextResponse("Unauthorized", status_code=401)
        delivery_id = params.get("id", "")
        raw_type = params.get("type", "")
        if not delivery_id or not raw_type.isdigit() or not 0 < int(raw_type) < 256:
            metrics.REPORTS.labels("refused").inc()
            log.warning("unreadable delivery report refused", report_type=raw_type[:20])
            return PlainTextResponse("Bad report: needs id and a numeric type", status_code=400)
        report_type = int(raw_type)
        reply = params.get("reply", "")
        result = await store.report(delivery_id, report_type=report_type, reply=reply, at=clock())
        metrics.REPORTS.labels(result).inc()
        if result == ReportResult.UNKNOWN:
            log.warning(
                "delivery report for an SMS we do not know",
                delivery_id=delivery_id[:64],
                report_type=report_type,
            )
            return PlainTextResponse("Unknown id", status_code=404)
        log.info(
            "delivery report",
            verification_id=delivery_id,
            report_type=report_type,
            published=result == ReportResult.PUBLISHED,
        )
        return PlainTextResponse("OK")

    return delivery_report


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None
