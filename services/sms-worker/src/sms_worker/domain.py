"""The sms-worker's rules, without I/O: who may get an SMS, its words, the retry delays, and
what a delivery report means."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")


class SendState(StrEnum):
    """Where a verification's one SMS stands with the gateway (the sms_deliveries row)."""

    PENDING = "pending"  # recorded; the gateway has provably not taken it (yet): a send may follow
    SENDING = "sending"  # a call to the gateway is (or was, if its worker died) under way: maybe sent
    SENT = "sent"  # the gateway accepted it
    UNKNOWN = "unknown"  # a call whose outcome nobody knows: never sent again
    FAILED = "failed"  # never sent, for good (rejected, expired, not allowed)


class Outcome(StrEnum):
    """What the delivery reports finally said."""

    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"


# Kannel's dlr-mask bits (the `type` of a delivery report).
DLR_DELIVERED = 1
DLR_UNDELIVERED = 2
DLR_QUEUED_ON_SMSC = 4
DLR_DELIVERED_TO_SMSC = 8
DLR_NOT_DELIVERED_TO_SMSC = 16
DLR_MASK = (
    DLR_DELIVERED | DLR_UNDELIVERED | DLR_QUEUED_ON_SMSC | DLR_DELIVERED_TO_SMSC | DLR_NOT_DELIVERED_TO_SMSC
)


def outcome_of_report(report_type: int) -> Outcome | None:
    """The final outcome a report says, or None for an intermediate one (queued, at the SMSC)."""
    if report_type & DLR_DELIVERED:
        return Outcome.DELIVERED
    if report_type & (DLR_UNDELIVERED | DLR_NOT_DELIVERED_TO_SMSC):
        return Outcome.UNDELIVERED
    return None


def is_allowed(msisdn: str, prefixes: Iterable[str]) -> bool:
    """Whether the number's country prefix is one we send to (E.164 digits, no plus)."""
    return any(msisdn.startswith(prefix) for prefix in prefixes)


def sms_text(code: str, expires_at: datetime) -> str:
    """The SMS in Norwegian, with the expiry in Oslo time (what the phone's clock shows)."""
    until = expires_at.astimezone(OSLO).strftime("%H:%M")
    return f"Din engangskode for mPort er {code}. Den gjelder til {until}."


def retry_delay_s(attempts: int, *, first_s: float, max_s: float) -> float:
    """The wait after `attempts` failed calls (1, 2, …): first_s, doubling, up to max_s."""
    return float(min(first_s * 2.0 ** min(max(attempts - 1, 0), 32), max_s))
