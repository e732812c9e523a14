"""The simulator's HTTP app: Kannel's `GET /cgi-bin/sendsms`, delivery reports to each SMS's
`dlr-url`, what it "sent" at `GET /messages`, its run-time config, and health.

Answers as Kannel 1.4 words them: 202 `0: Accepted for delivery`; 403 `Authorization failed for
sendsms` and `Not routable. Do not try again.`; 400 `Missing receiver number, rejected`; 503
`Temporal failure, try again later.`. It never logs a request's text or password."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import PlainTextResponse
from mport_shared.logging import get_logger
from pydantic import BaseModel, ConfigDict, Field

from sms_simulator.settings import MAX_LATENCY_MS, SimulatorSettings

log = get_logger(__name__)

SENDSMS_PATH = "/cgi-bin/sendsms"

# Kannel's dlr-mask bits.
DELIVERED, UNDELIVERED, QUEUED_ON_SMSC, AT_SMSC, NOT_AT_SMSC = 1, 2, 4, 8, 16


class SimulatorConfig(BaseModel):
    """How the gateway behaves right now."""

    latency_ms: int = Field(ge=0, le=MAX_LATENCY_MS)
    unavailable_rate: float = Field(ge=0.0, le=1.0)
    reject_all: bool
    reject_prefixes: list[str]
    undelivered_rate: float = Field(ge=0.0, le=1.0)
    undelivered_prefixes: list[str]
    dlr_delay_ms: int = Field(ge=0, le=MAX_LATENCY_MS)


class SimulatorConfigUpdate(BaseModel):
    """A change to the config; fields left out keep their value."""

    # A misspelt field silently ignored would leave a test running against the wrong gateway.
    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)
    unavailable_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    reject_all: bool | None = None
    reject_prefixes: list[Annotated[str, Field(pattern=r"^\d{1,15}$")]] | None = None
    undelivered_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    undelivered_prefixes: list[Annotated[str, Field(pattern=r"^\d{1,15}$")]] | None = None
    dlr_delay_ms: int | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)


@dataclass
class SentMessage:
    """One SMS the gateway took, as `GET /messages` shows it (the dlr-url, which carries the
    receiver's token, is kept back)."""

    id: str
    to: str
    sender: str
    text: str
    coding: int
    dlr_mask: int
    sent_at: datetime
    status: str = "accepted"  # then at_smsc, then delivered or undelivered
    reports: list[int] = field(default_factory=list)
    dlr_url: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "to": self.to,
            "from": self.sender,
            "text": self.text,
            "coding": self.coding,
            "dlr_mask": self.dlr_mask,
            "status": self.status,
            "reports": list(self.reports),
            "sent_at": self.sent_at.isoformat(),
        }


def create_app(settings: SimulatorSettings) -> FastAPI:
    config = SimulatorConfig(
        latency_ms=settings.latency_ms,
        unavailable_rate=settings.unavailable_rate,
        reject_all=settings.reject_all,
        reject_prefixes=list(settings.reject_prefixes),
        undelivered_rate=settings.undelivered_rate,
        undelivered_prefixes=list(settings.undelivered_prefixes),
        dlr_delay_ms=settings.dlr_delay_ms,
    )
    gateway = Gateway(settings=settings, config=config, rng=random.Random(settings.seed))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=settings.dlr_timeout_s, trust_env=False) as client:
            gateway.client = client
            try:
                yield
            finally:
                await gateway.close()

    app = FastAPI(title="SMS gateway simulator (Kannel sendsms)", lifespan=lifespan)
    app.include_router(_router(gateway))
    app.state.gateway = gateway
    return app


@dataclass
class Gateway:
    settings: SimulatorSettings
    config: SimulatorConfig
    rng: random.Random
    client: httpx.AsyncClient | None = None
    messages: deque[SentMessage] = field(default_factory=deque)
    _reports: set[asyncio.Task[None]] = field(default_factory=set)

    def answer(self, query: dict[str, str]) -> tuple[int, str]:
        """Kannel's answer to a sendsms request, and the SMS kept when it is taken."""
        username, password = query.get("username", ""), query.get("password", "")
        expected = self.settings.password.get_secret_value()
        if not (
            secrets.compare_digest(username.encode(), self.settings.username.encode())
            and secrets.compare_digest(password.encode(), expected.encode())
        ):
            return 403, "Authorization failed for sendsms"
        to = query.get("to", "").strip()
        if not to:
            return 400, "Missing receiver number, rejected"
        sender = query.get("from", "").strip()
        if not sender:
            return 400, "Sender missing and no global set, rejected"
        number = to.lstrip("+")
        if self.config.reject_all or any(number.startswith(p) for p in self.config.reject_prefixes):
            return 403, "Not routable. Do not try again."
        if self.config.unavailable_rate and self.rng.random() < self.config.unavailable_rate:
            return 503, "Temporal failure, try again later."
        message = SentMessage(
            id=str(uuid.uuid4()),
            to=to,
            sender=sender,
            text=query.get("text", ""),
            coding=_int(query.get("coding"), 0),
            dlr_mask=_int(query.get("dlr-mask"), 0),
            sent_at=datetime.now(UTC),
            dlr_url=query.get("dlr-url") or None,
        )
        self.messages.append(message)
        while len(self.messages) > self.settings.max_messages:
            self.messages.popleft()
        undelivered = any(number.startswith(p) for p in self.config.undelivered_prefixes) or (
            self.config.undelivered_rate > 0 and self.rng.random() < self.config.undelivered_rate
        )
        if message.dlr_url and message.dlr_mask:
            task = asyncio.create_task(self._report(message, undelivered=undelivered))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)
        else:
            message.status = "undelivered" if undelivered else "delivered"
        log.info("sms_simulator_sent", id=message.id, to=message.to, dlr=bool(message.dlr_url))
        return 202, "0: Accepted for delivery"

    async def _report(self, message: SentMessage, *, undelivered: bool) -> None:
        """At the SMSC (8), then delivered (1) or not (2), each after the report delay; only the
        bits the sender asked for are reported, but the status moves on regardless."""
        delay_s = self.config.dlr_delay_ms / 1000
        await asyncio.sleep(delay_s)
        message.status = "at_smsc"
        if message.dlr_mask & AT_SMSC:
            await self._post(message, AT_SMSC, "ACK/")
        await asyncio.sleep(delay_s)
        final, reply = (UNDELIVERED, "stat:UNDELIV") if undelivered else (DELIVERED, "stat:DELIVRD")
        message.status = "undelivered" if undelivered else "delivered"
        if message.dlr_mask & final:
            await self._post(message, final, f"id:{message.id} {reply}")

    async def _post(self, message: SentMessage, report_type: int, reply: str) -> None:
        assert message.dlr_url is not None
        assert self.client is not None
        url = fill_dlr_url(message.dlr_url, message=message, report_type=report_type, reply=reply)
        for attempt in range(self.settings.dlr_retries + 1):
            try:
                response = await self.client.get(url)
                if response.is_success:
                    message.reports.append(report_type)
                    return
                reason = f"answered {response.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            if attempt < self.settings.dlr_retries:
                # Growing delays, as a gateway's queue of reports retries: a receiver that is
                # restarting (a worker killed and started again) still gets the report.
                await asyncio.sleep(min(2.0**attempt, 15.0))
        # The URL carries the receiver's token: only the message id goes in the log.
        log.warning("sms_simulator_report_not_taken", id=message.id, report_type=report_type, reason=reason)

    async def close(self) -> None:
        for task in list(self._reports):
            task.cancel()
        for task in list(self._reports):
            with contextlib.suppress(asyncio.CancelledError):
                await task


_ESCAPE = re.compile(r"%(.)")


def fill_dlr_url(url: str, *, message: SentMessage, report_type: int, reply: str) -> str:
    """Kannel's dlr-url escapes, each value URL-encoded: %d the report type, %A the SMSC's reply,
    %p/%P the receiver and sender, %q/%Q the same without a leading +, %t/%T the time, %I/%F the
    message id, %b the text, %% a percent sign; any other escape is left as it is."""
    now = time.time()
    values = {
        "d": str(report_type),
        "A": reply,
        "p": message.to,
        "P": message.sender,
        "q": message.to.lstrip("+"),
        "Q": message.sender.lstrip("+"),
        "t": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "T": str(int(now)),
        "I": message.id,
        "F": message.id,
        "b": message.text,
        "%": "%",
    }

    def one(match: re.Match[str]) -> str:
        key = match[1]
        if key == "%":
            return "%"
        return quote(values[key], safe="") if key in values else match[0]

    return _ESCAPE.sub(one, url)


def _router(gateway: Gateway) -> APIRouter:
    router = APIRouter()

    @router.get(SENDSMS_PATH, tags=["kannel"], response_class=PlainTextResponse)
    async def sendsms(request: Request) -> Response:
        """Send an SMS (Kannel's sendsms: username, password, from, to, text, coding, dlr-mask, dlr-url).

        With a latency, the SMS is taken at once and the answer comes late: a sender that gives
        up waiting (or dies) meanwhile has sent it all the same, as with a real gateway."""
        status, text = gateway.answer(dict(request.query_params))
        if gateway.config.latency_ms:
            await asyncio.sleep(gateway.config.latency_ms / 1000)
        return PlainTextResponse(text, status_code=status)

    @router.get("/messages", tags=["simulator"])
    async def list_messages(to: Annotated[str | None, Query()] = None) -> list[dict[str, Any]]:
        """What the gateway took, oldest first; `?to=` keeps those to one number."""
        wanted = None if to is None else to.strip().lstrip("+")
        return [m.public() for m in gateway.messages if wanted is None or m.to.lstrip("+") == wanted]

    @router.delete("/messages", tags=["simulator"], status_code=204)
    async def clear_messages() -> Response:
        """Forget every message (reports still under way go out)."""
        gateway.messages.clear()
        return Response(status_code=204)

    @router.get("/simulator/config", tags=["simulator"])
    async def get_config() -> SimulatorConfig:
        """How the gateway behaves now."""
        return gateway.config

    @router.put("/simulator/config", tags=["simulator"])
    async def put_config(update: SimulatorConfigUpdate) -> SimulatorConfig:
        """Make the gateway slow, flaky (503), refusing (403) or failing deliveries, from now on."""
        gateway.config = gateway.config.model_copy(update=update.model_dump(exclude_none=True))
        log.info("sms_simulator_config_changed", **gateway.config.model_dump())
        return gateway.config

    @router.get("/healthz", tags=["simulator"])
    async def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "ok"}

    return router


def _int(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() else default
