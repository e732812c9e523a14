"""sms-worker settings, from the environment."""

from __future__ import annotations

from typing import Annotated

from mport_shared.settings import ServiceSettings
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

Seconds = Annotated[float, Field(gt=0)]


class SmsWorkerSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///var/sms-worker.db"
    http_port: int = 8092
    # The SMS gateway's Kannel sendsms interface (the simulator's by default) and its sendsms-user.
    sms_gateway_url: str = "http://127.0.0.1:8082/cgi-bin/sendsms"
    sms_gateway_username: str = "mport"
    sms_gateway_password: SecretStr = SecretStr("mport-local")
    sms_gateway_timeout_s: Seconds = 10.0
    # The sender the phone shows (alphanumeric, at most 11 characters, as the SMSC allows).
    sms_sender: str = Field(default="mPort", min_length=1, max_length=11)
    # Where the gateway reaches this worker's delivery-report endpoint; by default its own address.
    sms_dlr_base_url: str | None = None
    # The token delivery reports must carry; a fresh random one per process if unset.
    sms_dlr_secret: SecretStr | None = None
    # Country prefixes (E.164 digits) we send to; others fail as not_allowed, with no send
    # (SMS pumping). Comma-separated in the environment, e.g. SMS_ALLOWED_PREFIXES=47,46.
    sms_allowed_prefixes: Annotated[tuple[str, ...], NoDecode] = ("47",)
    # A code with less than this left is not worth sending: it would die before it is typed.
    sms_min_remaining_s: float = Field(default=5.0, ge=0)
    # While the gateway is away: first retry after this, doubling up to the maximum, for as long
    # as the code lives.
    sms_retry_first_s: Seconds = 1.0
    sms_retry_max_s: Seconds = 30.0

    @field_validator("sms_allowed_prefixes", mode="before")
    @classmethod
    def _split_prefixes(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip().lstrip("+") for part in value.split(",") if part.strip())
        if isinstance(value, tuple | list) and not all(str(p).isdigit() for p in value):
            raise ValueError("each prefix is digits, e.g. 47")
        return value

    @property
    def dlr_base_url(self) -> str:
        if self.sms_dlr_base_url:
            return self.sms_dlr_base_url.rstrip("/")
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::", "") else self.http_host
        return f"http://{host}:{self.http_port}"
