"""Order rules that need no I/O: statuses, SIM ICC validation, cleaning and fingerprints of requests."""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum

from mport_shared.events import OrderKind


class OrderStatus(StrEnum):
    RECEIVED = "received"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"


# Status only moves forward: received → submitted → completed or failed (orders.status applies
# each event as an UPDATE that matches only an order it moves forward).
OPEN_STATUSES = (OrderStatus.RECEIVED.value, OrderStatus.SUBMITTED.value)


_ICC = re.compile(r"^\d{19,20}$")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def icc_problem(icc: str) -> str | None:
    """Why an ICC (SIM card number) is not valid, or None: 19–20 digits with a Luhn check digit."""
    if not _ICC.match(icc):
        return "The SIM card's ICC number must be 19 or 20 digits."
    if not luhn_valid(icc):
        return "The SIM card's ICC number has a wrong check digit."
    return None


def clean_details(kind: OrderKind, details: dict[str, str]) -> dict[str, str]:
    """Order details as stored: runs of whitespace made one space, an ICC without any spaces."""
    cleaned = {k: " ".join(str(v).split()) for k, v in details.items()}
    if kind is OrderKind.SIM_ACTIVATION and "icc" in cleaned:
        cleaned["icc"] = cleaned["icc"].replace(" ", "")
    return cleaned


def fingerprint(product_code: str, details: dict[str, str]) -> str:
    """What makes two requests with one Idempotency-Key the same request."""
    canonical = json.dumps({"product_code": product_code, "details": details}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
