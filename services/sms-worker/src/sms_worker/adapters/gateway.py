"""The SMS gateway behind one narrow interface, and its real protocol: Kannel's HTTP `sendsms`.

Kannel answers 202 `0: Accepted for delivery` or `3: Queued for later delivery` when it took the
SMS, 403 when it never will (authorization failed, not routable), 400 for a request it cannot
read (no receiver), and 503 `Temporal failure, try again later.`. Its delivery reports come back
to the `dlr-url` we give, with `%d` (the report type) and `%A` (the SMSC's reply) filled in.

Neither the SMS text (it holds a one-time code) nor the password ever reaches a log line or an
error: both travel only in the query of the request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from sms_worker.domain import DLR_MASK


class GatewayError(Exception):
    """The gateway did not take the SMS; `reason` is safe to log (no text, no password)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GatewayRejected(GatewayError):
    """The gateway refused the SMS for good: sending it again cannot help."""


class GatewayUnavailable(GatewayError):
    """The gateway provably did not take the SMS now (it said so, or was never reached): retry."""


class GatewayOutcomeUnknown(GatewayError):
    """The request reached the gateway but no answer came back: it may have taken the SMS."""


@dataclass(frozen=True, slots=True)
class SendResult:
    gateway_message_id: str
    queued: bool  # `3: Queued for later delivery`: taken, but the SMSC is not reachable yet


class SmsGateway(Protocol):
    async def send(self, *, to: str, text: str, delivery_id: str) -> SendResult:
        """Hand one SMS to the gateway; its delivery reports carry `delivery_id`.

        Raises GatewayRejected, GatewayUnavailable or GatewayOutcomeUnknown."""
        ...


class KannelGateway:
    """Kannel's `GET /cgi-bin/sendsms`, on an httpx client the caller owns (tests pass a transport).

    `dlr_url(delivery_id)` is the worker's report endpoint for that SMS; the `%d` and `%A` in it
    are Kannel's escapes, filled in by Kannel, so the whole URL travels URL-encoded."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        url: str,
        username: str,
        password: SecretStr,
        sender: str,
        dlr_url: DlrUrl,
    ) -> None:
        self._client = client
        self._url = url
        self._username = username
        self._password = password
        self._sender = sender
        self._dlr_url = dlr_url

    async def send(self, *, to: str, text: str, delivery_id: str) -> SendResult:
        ucs2 = not _fits_gsm(text)
        params = {
            "username": self._username,
            "password": self._password.get_secret_value(),
            "from": self._sender,
            "to": to,
            "text": text,
            "charset": "UTF-8",
            # 0: the GSM 7-bit alphabet (160 characters an SMS); 2: UCS-2, for anything beyond it.
            "coding": "2" if ucs2 else "0",
            "dlr-mask": str(DLR_MASK),
            "dlr-url": self._dlr_url.for_delivery(delivery_id),
        }
        try:
            response = await self._client.get(self._url, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise GatewayUnavailable(f"gateway not reached: {type(exc).__name__}") from None
        except (httpx.WriteError, httpx.WriteTimeout) as exc:
            # The request was not fully written, so the gateway cannot have acted on it.
            raise GatewayUnavailable(f"request not sent to the gateway: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            # Sent, but the answer never came (read timeout, connection dropped): it may be out.
            raise GatewayOutcomeUnknown(f"no answer from the gateway: {type(exc).__name__}") from None
        answer = _short(response.text)
        if response.is_success:
            return SendResult(gateway_message_id=delivery_id, queued=answer.startswith("3:"))
        if response.status_code == 503 or response.status_code >= 500:
            raise GatewayUnavailable(f"gateway answered {response.status_code}: {answer}")
        raise GatewayRejected(f"gateway answered {response.status_code}: {answer}")


@dataclass(frozen=True, slots=True)
class DlrUrl:
    """The delivery-report URL of one SMS: our endpoint, the token, our id, Kannel's escapes."""

    base_url: str
    path: str
    secret: SecretStr

    def for_delivery(self, delivery_id: str) -> str:
        query = urlencode({"token": self.secret.get_secret_value(), "id": delivery_id})
        # %d and %A go in as they are: Kannel replaces them when it calls back.
        return f"{self.base_url.rstrip('/')}{self.path}?{query}&type=%d&reply=%A"


# The GSM 03.38 default alphabet (its extension table left out: those take two septets).
_GSM_7BIT = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def _fits_gsm(text: str) -> bool:
    return all(character in _GSM_7BIT for character in text)


def _short(text: str, limit: int = 200) -> str:
    # A gateway's answer is one short line; never more of it than that in a log.
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
