"""portal-api settings, from the environment."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Literal

from limits import RateLimitItem, parse_many
from mport_shared.settings import ServiceSettings
from pydantic import Field, SecretStr, field_validator, model_validator

from portal_api.auth.sessions import SessionPolicy
from portal_api.verifications.domain import CodeRules

# An employee places a handful of orders in a session; this stops a script, not a person.
DEFAULT_ORDER_RATE_LIMIT = "10/minute;60/hour"
OFF = "off"


def parse_rate_limit(value: str) -> tuple[RateLimitItem, ...]:
    """ "10/minute;60/hour" -> its limits; a ValueError saying what is wrong otherwise."""
    try:
        items = tuple(parse_many(value))
    except ValueError as error:
        raise ValueError(f"{value!r} is not a rate limit such as '10/minute;60/hour' or 'off'") from error
    if not items or any(item.amount < 1 for item in items):
        raise ValueError(f"{value!r} is not a rate limit such as '10/minute;60/hour' or 'off'")
    return items


_LOCAL_SESSION_SECRET = "local-development-only-" + secrets.token_hex(8)
# Per process, like the session secret: a code asked for before a restart no longer matches.
_LOCAL_VERIFICATION_SECRET = secrets.token_bytes(32)


class PortalSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///var/portal-api.db"
    # On SQLite (make run), one connection on the event loop: twice the orders per second of a
    # pool of aiosqlite threads (make bench). No PostgreSQL setting changes.
    database_sqlite_inline: bool = True
    http_port: int = 8000
    # local: development sign-in and the demo company; production: OpenID Connect only.
    mode: Literal["local", "production"] = Field(default="local", alias="PORTAL_MODE")
    session_secret: str = Field(default="", alias="SESSION_SECRET")
    # A session ends after this long without a request, and this long after sign-in whatever
    # happens (NIST SP 800-63B AAL2 and OWASP ASVS 3.3: 30 minutes idle, at most 12 hours; a
    # working day is enough here). The idle timeout is kept to within a minute (TOUCH_EVERY).
    session_idle_timeout_s: int = Field(default=30 * 60, ge=60, alias="SESSION_IDLE_TIMEOUT_S")
    session_max_age_s: int = Field(default=8 * 3600, ge=60, alias="SESSION_MAX_AGE_S")
    public_url: str = "http://127.0.0.1:8000"
    # "Bruk jobbkonto": OpenID Connect against the company's identity provider (e.g. Entra ID,
    # https://login.microsoftonline.com/<tenant>/v2.0). Unset: that button explains it is not set up.
    oidc_issuer: str = Field(default="", alias="OIDC_ISSUER")
    oidc_client_id: str = Field(default="", alias="OIDC_CLIENT_ID")
    oidc_client_secret: str = Field(default="", alias="OIDC_CLIENT_SECRET", repr=False)
    oidc_scopes: str = Field(default="openid profile email", alias="OIDC_SCOPES")
    # E-mail domains whose addresses the provider vouches for although it sends no `email_verified`
    # (Microsoft Entra ID never does): the company's own domains in its tenant. Comma-separated.
    # A first sign-in is matched to an employee by a verified e-mail only (auth/oidc.verified_email).
    oidc_verified_email_domains: str = Field(default="", alias="OIDC_VERIFIED_EMAIL_DOMAINS")
    # Larger request bodies get 413 before they are read (limits.py): forms (sign-in, sign-out;
    # urlencoded or multipart) and every other body (the JSON API). An order is well under 1 KiB.
    max_json_body_bytes: int = Field(default=64 * 1024, ge=1, alias="MAX_JSON_BODY_BYTES")
    max_form_body_bytes: int = Field(default=1024 * 1024, ge=1, alias="MAX_FORM_BODY_BYTES")
    # Hardening (security.py, ratelimit.py, live.py). Unset (None) means the mode's default.
    # /openapi.json, and /docs + /redoc (Swagger UI and ReDoc, which load scripts from a CDN):
    # served in local mode, not in production unless turned on.
    serve_openapi: bool | None = Field(default=None, alias="SERVE_OPENAPI")
    serve_api_docs: bool | None = Field(default=None, alias="SERVE_API_DOCS")
    # Prometheus metrics on a port of their own (e.g. 9000, not exposed to the public); unset:
    # on the portal's port in local mode, not served in production.
    metrics_port: int | None = Field(default=None, ge=1, le=65535, alias="METRICS_PORT")
    metrics_host: str | None = Field(default=None, alias="METRICS_HOST")
    # Strict-Transport-Security in production (the portal is served over TLS there); 0 sends none.
    hsts_max_age_s: int = Field(default=365 * 24 * 3600, ge=0, alias="HSTS_MAX_AGE_S")
    # Open event streams (GET /api/v1/events) per employee and portal process: one per open tab.
    max_event_streams_per_employee: int = Field(default=10, ge=1, alias="MAX_EVENT_STREAMS_PER_EMPLOYEE")
    # Rate limits in the `limits` notation ("10/minute;60/hour"), or "off". Orders count per
    # employee, sign-in requests per client address and route. Unset: orders limited in
    # production only (so that load tests and `make bench` measure the pipeline), sign-in always.
    order_rate_limit: str | None = Field(default=None, alias="ORDER_RATE_LIMIT")
    sign_in_rate_limit: str = Field(default="30/minute", alias="SIGN_IN_RATE_LIMIT")
    # Where the counts live: in this process by default; any `limits` async storage, e.g.
    # "async+redis://host:6379" (its driver installed), to share them between portal replicas.
    rate_limit_storage_uri: str = Field(default="async+memory://", alias="RATE_LIMIT_STORAGE_URI")
    # Phone verification (portal_api.verifications). The key of the one-time codes' HMAC: only
    # the HMAC is stored, so without this key a copy of the table does not give the codes away.
    verification_code_secret: SecretStr = Field(default=SecretStr(""), alias="VERIFICATION_CODE_SECRET")
    # How long a code is valid (NIST SP 800-63B: at most 10 minutes for an out-of-band code).
    verification_code_ttl_s: int = Field(default=600, ge=30, le=600, alias="VERIFICATION_CODE_TTL_S")
    # Country prefixes (E.164 digits, comma-separated) the portal sends codes to: SMS pumping
    # costs most on numbers abroad, and the demo companies' people are all in Norway.
    sms_allowed_prefixes: str = Field(default="47", alias="SMS_ALLOWED_PREFIXES")
    # Codes a company may be sent per day (since midnight UTC), whoever asks.
    sms_daily_budget_per_company: int = Field(default=200, ge=0, alias="SMS_DAILY_BUDGET_PER_COMPANY")
    # Where a developer reads the codes the SMS simulator "sent" (shown in local mode only).
    sms_simulator_url: str = Field(default="http://127.0.0.1:8082", alias="SMS_SIMULATOR_URL")
    # The payroll-worker's internal HTTP API (period close, exports) and the bearer token both
    # sides share; without a token the administrator's close and exports answer 503.
    payroll_worker_url: str = Field(default="http://127.0.0.1:8093", alias="PAYROLL_WORKER_URL")
    payroll_api_token: SecretStr = Field(default=SecretStr(""), alias="PAYROLL_API_TOKEN", repr=False)
    payroll_timeout_s: float = Field(default=10.0, gt=0, le=300, alias="PAYROLL_TIMEOUT_S")
    # Admission control (intake.py): while the portal's outbox, or a queue of the order pipeline
    # that has consumers, holds more than INTAKE_MAX_BACKLOG messages, a new order waits up to
    # INTAKE_WAIT_S for it to catch up, then gets 503 with Retry-After. 0 turns it off.
    intake_max_backlog: int = Field(default=100, ge=0, alias="INTAKE_MAX_BACKLOG")
    intake_wait_s: float = Field(default=10.0, gt=0, le=60, alias="INTAKE_WAIT_S")
    intake_check_interval_s: float = Field(default=0.25, gt=0, le=10, alias="INTAKE_CHECK_INTERVAL_S")

    @model_validator(mode="after")
    def _secret_outside_local(self) -> PortalSettings:
        if self.mode != "local" and len(self.session_secret) < 32:
            raise ValueError("SESSION_SECRET must be set (at least 32 characters) outside local mode")
        return self

    @model_validator(mode="after")
    def _code_secret_outside_local(self) -> PortalSettings:
        if self.mode != "local" and len(self.verification_code_secret.get_secret_value()) < 32:
            raise ValueError(
                "VERIFICATION_CODE_SECRET must be set (at least 32 characters) outside local mode"
            )
        return self

    @field_validator("sms_allowed_prefixes")
    @classmethod
    def _prefixes_are_digits(cls, value: str) -> str:
        prefixes = [p.strip().lstrip("+") for p in value.split(",") if p.strip()]
        if not prefixes or not all(p.isascii() and p.isdigit() and len(p) <= 4 for p in prefixes):
            raise ValueError(f"{value!r} is not a list of country prefixes such as '47' or '47,46'")
        return value

    @model_validator(mode="after")
    def _idle_within_max_age(self) -> PortalSettings:
        if self.session_idle_timeout_s > self.session_max_age_s:
            raise ValueError("SESSION_IDLE_TIMEOUT_S must not be longer than SESSION_MAX_AGE_S")
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> PortalSettings:
        if bool(self.oidc_issuer) != bool(self.oidc_client_id):
            raise ValueError("set both OIDC_ISSUER and OIDC_CLIENT_ID, or neither")
        return self

    @model_validator(mode="after")
    def _docs_need_openapi(self) -> PortalSettings:
        if self.api_docs_served and not self.openapi_served:
            raise ValueError("SERVE_API_DOCS needs SERVE_OPENAPI: the documentation pages read /openapi.json")
        return self

    @field_validator("order_rate_limit", "sign_in_rate_limit")
    @classmethod
    def _rate_limit_notation(cls, value: str | None) -> str | None:
        if value is not None and value.strip().lower() != OFF:
            parse_rate_limit(value)  # raises ValueError naming what is wrong
        return value

    @property
    def openapi_served(self) -> bool:
        return self.is_local if self.serve_openapi is None else self.serve_openapi

    @property
    def api_docs_served(self) -> bool:
        return self.is_local if self.serve_api_docs is None else self.serve_api_docs

    @property
    def metrics_on_main_port(self) -> bool:
        """/metrics beside the API: only in local mode, and only when it has no port of its own."""
        return self.is_local and self.metrics_port is None

    @property
    def order_limit(self) -> str | None:
        """The order rate limit in force, or None for none."""
        value = self.order_rate_limit
        if value is None:
            value = OFF if self.is_local else DEFAULT_ORDER_RATE_LIMIT
        return None if value.strip().lower() == OFF else value

    @property
    def sign_in_limit(self) -> str | None:
        return None if self.sign_in_rate_limit.strip().lower() == OFF else self.sign_in_rate_limit

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def oidc_verified_email_domain_set(self) -> frozenset[str]:
        """OIDC_VERIFIED_EMAIL_DOMAINS as lower-case domains ("@demo.no, Demo.NO" is {"demo.no"})."""
        return frozenset(
            d.strip().lower().lstrip("@") for d in self.oidc_verified_email_domains.split(",") if d.strip()
        )

    @property
    def oidc_redirect_uri(self) -> str:
        """Where the identity provider sends the browser back; register it with the provider."""
        return self.public_url.rstrip("/") + "/auth/oidc/callback"

    @property
    def session_policy(self) -> SessionPolicy:
        return SessionPolicy(
            idle_timeout=timedelta(seconds=self.session_idle_timeout_s),
            max_age=timedelta(seconds=self.session_max_age_s),
        )

    @property
    def session_cookie(self) -> str:
        """`__Host-` outside local mode: the browser then takes the cookie only over HTTPS, for
        Path=/ and without a Domain, so no other host (a sibling subdomain) can set or replace it.
        Local mode runs on plain http, where a `__Host-` cookie would be refused."""
        return "mport_session" if self.is_local else "__Host-mport_session"

    @property
    def effective_session_secret(self) -> str:
        return self.session_secret or _LOCAL_SESSION_SECRET

    @property
    def code_rules(self) -> CodeRules:
        return CodeRules(
            ttl=timedelta(seconds=self.verification_code_ttl_s),
            allowed_prefixes=tuple(
                p.strip().lstrip("+") for p in self.sms_allowed_prefixes.split(",") if p.strip()
            ),
            daily_budget_per_company=self.sms_daily_budget_per_company,
        )

    @property
    def effective_verification_secret(self) -> bytes:
        secret = self.verification_code_secret.get_secret_value()
        return secret.encode() if secret else _LOCAL_VERIFICATION_SECRET

    @property
    def sms_messages_url(self) -> str:
        """The SMS simulator's list of what it "sent", where a developer reads the code."""
        return self.sms_simulator_url.rstrip("/") + "/messages"

    @property
    def is_local(self) -> bool:
        return self.mode == "local"
