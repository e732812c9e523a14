"""Redaction: no secrets, passwords in URLs or one-time codes reach a log line."""

from __future__ import annotations

from typing import Any

from mport_shared.logging import REDACTED, redact


def _redact(**event: Any) -> dict[str, Any]:
    return dict(redact(None, "info", dict(event)))


def test_secret_keys_are_masked_wherever_they_are() -> None:
    out = _redact(event="x", code="123456", password="p", nested={"access_token": "t", "ok": 1})
    assert out["code"] == REDACTED
    assert out["password"] == REDACTED
    assert out["nested"] == {"access_token": REDACTED, "ok": 1}


def test_useful_keys_that_look_secret_are_kept() -> None:
    out = _redact(event="x", product_code="ekstra-data-15gb", status_code=202)
    assert out == {"event": "x", "product_code": "ekstra-data-15gb", "status_code": 202}


def test_password_in_a_url_is_masked() -> None:
    out = _redact(event="connecting", url="amqp://guest:s3cret@broker:5672/")
    assert out["url"] == f"amqp://guest:{REDACTED}@broker:5672/"


def test_a_code_in_free_text_is_masked() -> None:
    assert _redact(event="your code is 482913")["event"] == f"your code is {REDACTED}"
    assert _redact(event="msisdn 4791234567")["event"] == "msisdn 4791234567"
