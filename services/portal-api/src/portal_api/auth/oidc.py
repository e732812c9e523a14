"""'Bruk jobbkonto': OpenID Connect sign-in (authorization code flow with PKCE) against the company's
identity provider, e.g. Microsoft Entra ID. The ID token is verified here (JWKS signature, iss, aud,
exp, nonce) with joserfc, the JOSE library of the authlib project (authlib.jose is deprecated)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from mport_shared.logging import get_logger
from sqlalchemy import func, select

from portal_api.auth.views import start_session
from portal_api.deps import Db, Settings
from portal_api.models import Employee
from portal_api.pages.rendering import NEXT_PARAM, SIGN_IN_PATH, render, safe_next
from portal_api.ratelimit import limit_sign_in
from portal_api.settings import PortalSettings

log = get_logger(__name__)

PENDING_KEY = "oidc_pending"
# How long the employee may take at the identity provider before the sign-in must start over.
PENDING_TTL_S = 600
# Asymmetric algorithms only: never "none", never HMAC keyed with something the client knows.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
CLOCK_LEEWAY_S = 60
METADATA_TTL_S = 3600


class SignInRefused(Exception):
    """The sign-in cannot go on; `reason` picks the message the employee sees (login.failed.<reason>)."""

    def __init__(self, reason: str, *, log_detail: str = "", **values: str) -> None:
        super().__init__(f"{reason}: {log_detail}" if log_detail else reason)
        self.reason = reason
        self.values = values


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the provider's discovery document this client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    signing_algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """What the callback must match, kept in the signed session cookie between the two legs."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str
    started_at: float

    def to_session(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_session(cls, raw: object) -> PendingSignIn | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                state=str(raw["state"]),
                nonce=str(raw["nonce"]),
                code_verifier=str(raw["code_verifier"]),
                next_path=str(raw["next_path"]),
                started_at=float(raw["started_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def s256_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636 §4.2): BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def identity_email(claims: Mapping[str, Any]) -> str | None:
    """The e-mail address that names the employee: `email`, else Entra's `preferred_username` or `upn`.

    An `email` the provider itself says is unverified is not trusted."""
    candidates = []
    if claims.get("email_verified") is not False:
        candidates.append(claims.get("email"))
    candidates += [claims.get("preferred_username"), claims.get("upn")]
    for value in candidates:
        if isinstance(value, str) and "@" in value.strip():
            return value.strip().lower()
    return None


@dataclass
class OidcClient:
    """The relying party: builds the authorization request and verifies what comes back."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: str
    http: httpx.AsyncClient
    clock: Callable[[], float] = time.time
    _metadata: ProviderMetadata | None = field(default=None, init=False)
    _metadata_at: float = field(default=0.0, init=False)
    _keys: KeySet | None = field(default=None, init=False)

    async def begin(self, *, next_path: str) -> tuple[str, PendingSignIn]:
        """The provider's authorization URL to send the browser to, and what to remember."""
        metadata = await self.metadata()
        pending = PendingSignIn(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            next_path=next_path,
            started_at=self.clock(),
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scopes,
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": s256_challenge(pending.code_verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return f"{metadata.authorization_endpoint}{separator}{query}", pending

    async def finish(self, *, params: Mapping[str, str], pending: PendingSignIn | None) -> dict[str, Any]:
        """Check the callback against the pending sign-in, redeem the code, verify the ID token."""
        if pending is None or self.clock() - pending.started_at > PENDING_TTL_S:
            raise SignInRefused("expired", log_detail="no pending sign-in in this session, or too old")
        state = params.get("state", "")
        if not state or not hmac.compare_digest(state, pending.state):
            raise SignInRefused("expired", log_detail="state does not match")
        metadata = await self.metadata()
        # RFC 9207: when the provider names itself in the response, it must be the one we asked.
        if "iss" in params and params["iss"] != metadata.issuer:
            raise SignInRefused("invalid_response", log_detail="iss in the response is another issuer")
        if params.get("error"):
            raise SignInRefused(
                "provider_error", detail=params["error"], log_detail=params.get("error_description", "")
            )
        code = params.get("code")
        if not code:
            raise SignInRefused("invalid_response", log_detail="no code in the callback")
        tokens = await self._redeem(metadata, code, pending.code_verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("invalid_response", log_detail="no id_token in the token response")
        return await self.verify_id_token(id_token, nonce=pending.nonce)

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """OpenID Connect Core §3.1.3.7: signature by the provider's key, iss, aud (and azp), exp, nonce."""
        metadata = await self.metadata()
        algorithms = [a for a in metadata.signing_algorithms if a in SIGNING_ALGORITHMS] or ["RS256"]
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(), algorithms=algorithms)
            except InvalidKeyIdError:
                # The provider rotated its keys since we fetched them: fetch once more.
                token = jwt.decode(id_token, await self._key_set(refresh=True), algorithms=algorithms)
            claims: dict[str, Any] = token.claims
            jwt.JWTClaimsRegistry(
                now=int(self.clock()),
                leeway=CLOCK_LEEWAY_S,
                iss={"essential": True, "value": metadata.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except JoseError as exc:
            raise SignInRefused("invalid_response", log_detail=f"ID token refused: {exc}") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise SignInRefused("invalid_response", log_detail="ID token for several audiences, azp not us")
        return claims

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is not None and self.clock() - self._metadata_at < METADATA_TTL_S:
            return self._metadata
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url)
        issuer = str(document.get("issuer", ""))
        # OpenID Connect Discovery §4.3: the document must be about the issuer we were configured with.
        if issuer.rstrip("/") != self.issuer.rstrip("/"):
            raise SignInRefused("unavailable", log_detail=f"discovery names issuer {issuer!r}")
        try:
            self._metadata = ProviderMetadata(
                issuer=issuer,
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
                signing_algorithms=tuple(document.get("id_token_signing_alg_values_supported") or ("RS256",)),
                token_auth_methods=tuple(
                    document.get("token_endpoint_auth_methods_supported") or ("client_secret_basic",)
                ),
            )
        except KeyError as exc:
            raise SignInRefused("unavailable", log_detail=f"discovery document lacks {exc}") from exc
        self._metadata_at = self.clock()
        self._keys = None
        return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self.metadata()
            try:
                self._keys = KeySet.import_key_set(await self._get_json(metadata.jwks_uri))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as exc:
                raise SignInRefused("unavailable", log_detail=f"unusable JWKS: {exc}") from exc
        return self._keys

    async def _redeem(self, metadata: ProviderMetadata, code: str, verifier: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
            "client_id": self.client_id,
        }
        auth = httpx.Auth()  # the base class sends the request as it is: a public client
        if self.client_secret:
            if "client_secret_basic" in metadata.token_auth_methods:
                # RFC 6749 §2.3.1: both are form-encoded before they go into the Basic header.
                auth = httpx.BasicAuth(quote_plus(self.client_id), quote_plus(self.client_secret))
            else:
                form["client_secret"] = self.client_secret
        try:
            response = await self.http.post(
                metadata.token_endpoint, data=form, auth=auth, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise SignInRefused("unavailable", log_detail=f"token endpoint: {exc}") from exc
        if response.status_code != 200:
            error = _json_or_empty(response).get("error", response.status_code)
            raise SignInRefused("invalid_response", log_detail=f"token endpoint answered {error}")
        return _json_or_empty(response)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise SignInRefused("unavailable", log_detail=f"{url}: {exc}") from exc
        document = _json_or_empty(response)
        if not document:
            raise SignInRefused("unavailable", log_detail=f"{url}: not a JSON object")
        return document


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


router = APIRouter(prefix="/auth/oidc", tags=["auth"], include_in_schema=False)


def _refused(request: Request, refusal: SignInRefused) -> Response:
    log.warning("work account sign-in refused", reason=refusal.reason, detail=str(refusal))
    status = 403 if refusal.reason == "unknown_user" else 503 if refusal.reason == "unavailable" else 400
    return render(
        request,
        "error.html",
        {
            "title_key": "login.failed.title",
            "message_key": f"login.failed.{refusal.reason}",
            "message_values": refusal.values,
            "retry_href": SIGN_IN_PATH,
        },
        status_code=status,
    )


@router.get("/login", dependencies=[Depends(limit_sign_in)])
async def oidc_login(request: Request) -> Response:
    """Start "Bruk jobbkonto": off to the identity provider."""
    client: OidcClient | None = request.app.state.oidc
    if client is None:
        return _refused(request, SignInRefused("not_configured"))
    try:
        url, pending = await client.begin(next_path=safe_next(request.query_params.get(NEXT_PARAM)))
    except SignInRefused as refusal:
        return _refused(request, refusal)
    request.session[PENDING_KEY] = pending.to_session()
    return RedirectResponse(url, status_code=302)


@router.get("/callback", dependencies=[Depends(limit_sign_in)])
async def oidc_callback(request: Request, db: Db, settings: Settings) -> Response:
    """The provider sends the browser back here with a code; a verified token signs the employee in."""
    client: OidcClient | None = request.app.state.oidc
    if client is None:
        return _refused(request, SignInRefused("not_configured"))
    # One use only: a replayed callback finds nothing pending.
    pending = PendingSignIn.from_session(request.session.pop(PENDING_KEY, None))
    try:
        claims = await client.finish(params=dict(request.query_params), pending=pending)
        email = identity_email(claims)
        if email is None:
            raise SignInRefused("no_email", log_detail=f"no usable e-mail claim for sub {claims.get('sub')}")
        employee = await db.scalar(select(Employee).where(func.lower(Employee.email) == email))
        if employee is None:
            raise SignInRefused("unknown_user", email=email)
    except SignInRefused as refusal:
        return _refused(request, refusal)
    assert pending is not None  # finish() refused otherwise
    response = RedirectResponse(safe_next(pending.next_path), status_code=303)
    start_session(request, response, employee, secure=not settings.is_local)
    log.info("signed in with work account", employee_id=str(employee.id))
    return response


def make_client(settings: PortalSettings, http: httpx.AsyncClient) -> OidcClient:
    """The relying party for these settings (OIDC configured)."""
    return OidcClient(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        redirect_uri=settings.oidc_redirect_uri,
        scopes=settings.oidc_scopes,
        http=http,
    )
