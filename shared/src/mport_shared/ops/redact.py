"""What `mport-ops` never prints: secrets and one-time codes in a message's headers or body.

The one denylist: a key is hidden when its name, lower-cased and without `-`/`_`, is one of
`SECRET_KEYS` or contains one of `SECRET_PARTS` (so `code` is hidden, `product_code` is not)."""

from __future__ import annotations

from typing import Any

REDACTED = "«redacted»"

# Exact names (normalised): VerificationRequested carries the one-time `code`.
SECRET_KEYS = frozenset(
    {
        "code",
        "otp",
        "onetimecode",
        "verificationcode",
        "pin",
        "puk",
        "pin1",
        "pin2",
        "puk1",
        "puk2",
        "cvc",
        "cvv",
    }
)
# Parts of names: anything that looks like a credential.
SECRET_PARTS = ("password", "passwd", "secret", "token", "authorization", "apikey", "cookie", "privatekey")


def _normalised(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")


def is_secret_key(key: str) -> bool:
    name = _normalised(key)
    return name in SECRET_KEYS or any(part in name for part in SECRET_PARTS)


def redact(value: Any) -> Any:
    """A copy of `value` (JSON-like: dicts, lists, scalars) with every secret key's value hidden."""
    if isinstance(value, dict):
        return {str(k): (REDACTED if is_secret_key(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
