"""portal-api settings, from the environment."""

from __future__ import annotations

import secrets
from typing import Literal

from mport_shared.settings import ServiceSettings
from pydantic import Field, model_validator

_LOCAL_SESSION_SECRET = "local-development-only-" + secrets.token_hex(8)


class PortalSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///var/portal-api.db"
    http_port: int = 8000
    # local: development sign-in and the demo company; production: OpenID Connect only.
    mode: Literal["local", "production"] = Field(default="local", alias="PORTAL_MODE")
    session_secret: str = Field(default="", alias="SESSION_SECRET")
    session_max_age_s: int = 8 * 3600
    public_url: str = "http://127.0.0.1:8000"
    # "Bruk jobbkonto": OpenID Connect against the company's identity provider (e.g. Entra ID,
    # https://login.microsoftonline.com/<tenant>/v2.0). Unset: that button explains it is not set up.
    oidc_issuer: str = Field(default="", alias="OIDC_ISSUER")
    oidc_client_id: str = Field(default="", alias="OIDC_CLIENT_ID")
    oidc_client_secret: str = Field(default="", alias="OIDC_CLIENT_SECRET", repr=False)
    oidc_scopes: str = Field(default="openid profile email", alias="OIDC_SCOPES")
    # Larger request bodies get 413 before they are read (limits.py): forms (sign-in, sign-out;
    # urlencoded or multipart) and every other body (the JSON API). An order is well under 1 KiB.
    max_json_body_bytes: int = Field(default=64 * 1024, ge=1, alias="MAX_JSON_BODY_BYTES")
    max_form_body_bytes: int = Field(default=1024 * 1024, ge=1, alias="MAX_FORM_BODY_BYTES")

    @model_validator(mode="after")
    def _secret_outside_local(self) -> PortalSettings:
        if self.mode != "local" and len(self.session_secret) < 32:
            raise ValueError("SESSION_SECRET must be set (at least 32 characters) outside local mode")
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> PortalSettings:
        if bool(self.oidc_issuer) != bool(self.oidc_client_id):
            raise ValueError("set both OIDC_ISSUER and OIDC_CLIENT_ID, or neither")
        return self

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def oidc_redirect_uri(self) -> str:
        """Where the identity provider sends the browser back; register it with the provider."""
        return self.public_url.rstrip("/") + "/auth/oidc/callback"

    @property
    def effective_session_secret(self) -> str:
        return self.session_secret or _LOCAL_SESSION_SECRET

    @property
    def is_local(self) -> bool:
        return self.mode == "local"
