"""Order rules that need no I/O: statuses, SIM ICC validation, cleaning and fingerprints of requests."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
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


# [0-9], not \d: Python's \d (and int()) also take fullwidth, Arabic-Indic and other digits.
_ICC = re.compile(r"[0-9]{19,20}")
_ASCII_DIGITS = frozenset("0123456789")

# Unicode categories no one-line text field takes: controls, format characters (bidi controls,
# zero-width characters, the BOM, soft hyphen ...), lone surrogates (a JSON "\ud800" parses to
# one, and encoding it for the database or the outbox fails), private use and unassigned.
_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (such as a bidi control or a zero-width character)",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
}
# Controls that are whitespace a person types or pastes (the address is a <textarea>): they are
# collapsed into one space with the rest, as before, rather than refused.
_TYPED_WHITESPACE = frozenset("\t\n\r")


def text_problem(text: str) -> str | None:
    """Why a one-line text may not be taken as it is, naming its first refused character, or None."""
    for position, ch in enumerate(text, start=1):
        if ch in _TYPED_WHITESPACE:
            continue
        kind = _REFUSED_CATEGORIES.get(unicodedata.category(ch))
        if kind is not None:
            return f"character {position} is U+{ord(ch):04X}, {kind}, which is not allowed"
    return None


def details_problem(details: Mapping[object, object]) -> str | None:
    """Why order details (names and text values) may not be taken, naming the detail, or None."""
    for name, value in details.items():
        if isinstance(name, str) and (problem := text_problem(name)):
            # repr() escapes every refused character, so the answer itself can always be encoded.
            return f"The order detail name {name!r} is not valid: {problem}."
        if isinstance(name, str) and isinstance(value, str) and (problem := text_problem(value)):
            return f"The order detail {name!r} is not valid: {problem}."
    return None


def clean_text(text: str) -> str:
    """Text as stored, compared and sent on: NFC-normalised, each run of whitespace one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def luhn_valid(digits: str) -> bool:
    if not digits or not set(digits) <= _ASCII_DIGITS:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def icc_problem(icc: str) -> str | None:
    """Why an ICC (SIM card number) is not valid, or None: 19–20 digits 0-9 with a Luhn check digit."""
    if not _ICC.fullmatch(icc):
        if any(ch.isdigit() and ch not in _ASCII_DIGITS for ch in icc):
            return "The SIM card's ICC number must be written with the digits 0-9 only."
        return "The SIM card's ICC number must be 19 or 20 digits."
    if not luhn_valid(icc):
        return "The SIM card's ICC number has a wrong check digit."
    return None


def clean_details(kind: OrderKind, details: dict[str, str]) -> dict[str, str]:
    """Order details as stored: each value cleaned (clean_text), an ICC without any spaces."""
    cleaned = {k: clean_text(str(v)) for k, v in details.items()}
    if kind is OrderKind.SIM_ACTIVATION and "icc" in cleaned:
        cleaned["icc"] = cleaned["icc"].replace(" ", "")
    return cleaned


def fingerprint(product_code: str, details: dict[str, str]) -> str:
    """What makes two requests with one Idempotency-Key the same request."""
    canonical = json.dumps({"product_code": product_code, "details": details}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
