"""The identity simulator's settings, read from `IDENTITY_SIM_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _check_absolute_url(value: str, *, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, got {value!r}")
    if parts.fragment or value.endswith("#"):
        raise ValueError(f"{what} must not have a fragment, got {value!r}")
    return value


class ClientConfig(BaseModel):
    """A registered relying party (a confidential client with a secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1, repr=False)
    # OAuth 2.0 Security BCP: compared exactly, character for character; no wildcards.
    redirect_uris: tuple[str, ...] = Field(min_length=1)
    post_logout_redirect_uris: tuple[str, ...] = ()
    # What the sign-in page calls the service asking.
    name: str = ""

    @field_validator("redirect_uris", "post_logout_redirect_uris")
    @classmethod
    def _absolute(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_absolute_url(v, what="a redirect URI") for v in values)

    @property
    def display_name(self) -> str:
        return self.name or self.client_id


class PersonConfig(BaseModel):
    """Someone the provider knows and lists on its sign-in page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    email: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    email_verified: bool = True
    # Left out: derived from the e-mail with HMAC (see directory.py). Give the old one to keep a
    # person's `sub` while configuring a new e-mail for them.
    sub: str | None = Field(default=None, min_length=1, max_length=255)


DEFAULT_CLIENTS: tuple[ClientConfig, ...] = (
    ClientConfig(
        client_id="mport-portal",
        client_secret="local-dev-secret",  # noqa: S106 (a well-known local development secret)
        redirect_uris=(
            "http://127.0.0.1:8000/auth/oidc/callback",
            "http://localhost:8000/auth/oidc/callback",
        ),
        post_logout_redirect_uris=("http://127.0.0.1:8000/logg-inn", "http://localhost:8000/logg-inn"),
        name="mPort",
    ),
)

# The demo people of DESIGN §12, in both demo companies.
DEFAULT_PEOPLE: tuple[PersonConfig, ...] = (
    PersonConfig(name="Kari Nordmann", email="kari.nordmann@demo.no"),
    PersonConfig(name="Håkon Hafell", email="hakon.hafell@demo.no"),
    PersonConfig(name="Ingrid Berg", email="admin@demo.no"),
    PersonConfig(name="Per Fjell", email="admin@fjordlogistikk.no"),
    PersonConfig(name="Siri Dahl", email="siri.dahl@fjordlogistikk.no"),
)

# Fixed, so that every run gives each person the same `sub` and a relying party's binding of an
# account to (iss, sub) survives a restart of the simulator.
DEFAULT_SUBJECT_KEY = "mport-identity-simulator-subjects"


class IdentitySimSettings(BaseSettings):
    """Where the provider listens, whom it knows, which clients it serves, and for how long."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_SIM_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8083, ge=1, le=65535)
    # Every endpoint URL is built on it; a path in it (".../tenant/v2.0") prefixes the routes.
    issuer: str = "http://127.0.0.1:8083"
    clients: tuple[ClientConfig, ...] = Field(default=DEFAULT_CLIENTS, min_length=1)
    people: tuple[PersonConfig, ...] = DEFAULT_PEOPLE
    subject_key: str = Field(default=DEFAULT_SUBJECT_KEY, min_length=1, repr=False)
    code_ttl_s: int = Field(default=60, ge=1, le=600)
    access_token_ttl_s: int = Field(default=600, ge=1)
    id_token_ttl_s: int = Field(default=600, ge=1)
    # How long the sign-in page waits for a choice before the sign-in must start over.
    sign_in_ttl_s: int = Field(default=600, ge=1)
    # OIDC Core's code flow puts profile and e-mail in UserInfo; this adds them to the ID token too.
    email_in_id_token: bool = False
    # `email_verified` of an address typed in "Annen e-postadresse".
    typed_email_verified: bool = False
    # A PEM or JWK file with the RSA signing key; made (and kept) there when it does not exist.
    # Not set: a new key at every start.
    key_file: Path | None = None
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        # OpenID Connect Discovery §3: a URL with no query or fragment; kept without a trailing slash
        # so that the `iss` of tokens is exactly the discovery document's `issuer`.
        value = _check_absolute_url(value, what="the issuer")
        if urlsplit(value).query or "?" in value:
            raise ValueError("the issuer must not have a query")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _unique(self) -> IdentitySimSettings:
        ids = [c.client_id for c in self.clients]
        if len(set(ids)) != len(ids):
            raise ValueError("client ids must be unique")
        emails = [p.email.lower() for p in self.people]
        if len(set(emails)) != len(emails):
            raise ValueError("people's e-mail addresses must be unique")
        subs = [p.sub for p in self.people if p.sub is not None]
        if len(set(subs)) != len(subs):
            raise ValueError("people's sub values must be unique")
        return self

    @property
    def base_path(self) -> str:
        """The issuer's path, under which the OpenID Connect endpoints are served ("" for none)."""
        return urlsplit(self.issuer).path.rstrip("/")
