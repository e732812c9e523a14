"""The sms-worker's settings as the environment gives them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sms_worker.settings import SmsWorkerSettings


def test_allowed_prefixes_are_a_comma_separated_list_of_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_ALLOWED_PREFIXES", "47, +46,45")
    assert SmsWorkerSettings().sms_allowed_prefixes == ("47", "46", "45")
    monkeypatch.setenv("SMS_ALLOWED_PREFIXES", "47,4x")
    with pytest.raises(ValidationError, match="digits"):
        SmsWorkerSettings()


def test_the_dlr_url_defaults_to_the_workers_own_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("HTTP_PORT", "18092")
    assert SmsWorkerSettings().dlr_base_url == "http://127.0.0.1:18092"
    monkeypatch.setenv("SMS_DLR_BASE_URL", "http://sms-worker:8092/")
    assert SmsWorkerSettings().dlr_base_url == "http://sms-worker:8092"


def test_the_password_and_the_report_token_are_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_GATEWAY_PASSWORD", "hunter2-pw")
    monkeypatch.setenv("SMS_DLR_SECRET", "dlr-token")
    shown = repr(SmsWorkerSettings())
    assert "hunter2-pw" not in shown
    assert "dlr-token" not in shown
