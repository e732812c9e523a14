"""'Bruk jobbkonto': OpenID Connect sign-in (authorization code flow with PKCE) against the company's
identity provider, e.g. Microsoft Entra ID. The ID token is verified here (JWKS signature, iss, aud,
exp, nonce) with joserfc, the JOSE library of the authlib project (authlib.jose is deprecated).

Who signs in is the provider's `(iss, sub)`: bound to an employee the first time by a verified
e-mail (from the ID token, else from UserInfo), found by that binding ever after (auth/accounts.py).
`preferred_username` and `upn` never name anyone: a user can edit them in Entra ID."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit, urlunsplit

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from mport_shared.logging import get_logger
from sqlalchemy.ext.asyncio import AsyncSession

from portal_api.auth.accounts import bind_by_email, bound_employee
from portal_api.auth.refusals import SignInRefused
from portal_api.auth.views import start_session
from portal_api.deps import Db, Settings
from portal_api.models import Employee
from portal_api.pages.rendering import NEXT_PARAM, SIGN_IN_PATH, render, safe_next
from portal_api.ratelimit import limit_sign_in
from portal_api.settings import PortalSettings

__all__ = ["Authentication", "OidcClient", "SignInRefused", "make_client", "router", "verified_email"]

log = get_logger(__name__)

PENDING_KEY = "oidc_pending"
# How long the employee may take at the identity provider before the sign-in must start over.
PENDING_TTL_S = 600
# Asymmetric algorithms only: never "none", never HMAC keyed with something the client knows.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
CLOCK_LEEWAY_S = 60
METADATA_TTL_S = 3600
# Authorization errors (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6) about the person, not the
# set-up: they cancelled, or the provider wants them to do something first.
USER_FACING_ERRORS = frozenset(
    {
        "access_denied",
        "login_required",
        "interaction_required",
        "consent_required",
        "account_selection_required",
    }
)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the provider's discovery document this client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    signing_algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Authentication:
    """What a completed code flow gives: the verified ID token's claims and the access token."""

    claims: dict[str, Any]
    access_token: str | None

    @property
    def issuer(self) -> str:
        return str(self.claims["iss"])

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])


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


def claimed_email(claims: Mapping[str, Any]) -> str | None:
    """The `email` claim, lower-cased, if it looks like an address. Only `email`: never Entra's
    `preferred_username` or `upn`, which the user or a guest tenant controls."""
    value = claims.get("email")
    if isinstance(value, str) and "@" in value.strip():
        return value.strip().lower()
    return None


def _claim_is_true(value: object) -> bool:
    # Some providers send booleans as strings ("true") in UserInfo.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def verified_email(claims: Mapping[str, Any], *, trusted_domains: frozenset[str] = frozenset()) -> str:
    """The e-mail that may find an employee at a first sign-in, or SignInRefused.

    - `email_verified: true`: verified.
    - `email_verified` present and anything else (false): refused, whatever the domain.
    - no `email_verified` (Microsoft Entra ID never sends it): verified when Entra's optional claim
      `xms_edov` (the e-mail's domain is verified in the tenant) is true, or when the address's
      domain is one of `trusted_domains` (OIDC_VERIFIED_EMAIL_DOMAINS: the operator says this
      provider is authoritative for it); refused otherwise."""
    email = claimed_email(claims)
    if email is None:
        raise SignInRefused("no_email", log_detail=f"no e-mail claim for sub {claims.get('sub')!r}")
    if "email_verified" in claims:
        if _claim_is_true(claims["email_verified"]):
            return email
        raise SignInRefused(
            "unverified_email", email=email, log_detail=f"email_verified is {claims['email_verified']!r}"
        )
    if _claim_is_true(claims.get("xms_edov")):
        return email
    domain = email.rpartition("@")[2]
    if domain in trusted_domains:
        return email
    raise SignInRefused(
        "unverified_email",
        email=email,
        log_detail=(
            f"the provider sent no email_verified for an address at {domain}: if it is authoritative "
            f"for {domain} (e.g. the company's own domain in its Entra ID tenant), add {domain} to "
            "OIDC_VERIFIED_EMAIL_DOMAINS, or have Entra ID send the optional ID token claim xms_edov"
        ),
    )


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

    async def finish(self, *, params: Mapping[str, str], pending: PendingSignIn | None) -> Authentication:
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
            error = params["error"]
            description = _clip(params.get("error_description", ""))
            if error not in USER_FACING_ERRORS:
                # invalid_request, unauthorized_client, invalid_scope, server_error ...: nothing the
                # employee can change; the administrator reads why in the log.
                raise SignInRefused(
                    "misconfigured", log_detail=f"the authorization endpoint answered {error}: {description}"
                )
            raise SignInRefused("provider_error", detail=error, log_detail=description)
        code = params.get("code")
        if not code:
            raise SignInRefused("invalid_response", log_detail="no code in the callback")
        tokens = await self._redeem(metadata, code, pending.code_verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("invalid_response", log_detail="no id_token in the token response")
        claims = await self.verify_id_token(id_token, nonce=pending.nonce)
        access_token = tokens.get("access_token")
        if not isinstance(access_token, str):
            access_token = None
        return Authentication(claims=claims, access_token=access_token)

    async def userinfo(self, authentication: Authentication) -> dict[str, Any]:
        """The UserInfo claims (OpenID Connect Core §5.3) of the signed-in account; refused unless
        their `sub` is the ID token's (§5.3.2: else they may be someone else's)."""
        metadata = await self.metadata()
        if metadata.userinfo_endpoint is None:
            raise SignInRefused(
                "no_email", log_detail="no e-mail in the ID token, and the provider has no userinfo_endpoint"
            )
        if authentication.access_token is None:
            raise SignInRefused("invalid_response", log_detail="no access_token to ask UserInfo with")
        try:
            bearer = f"Bearer {authentication.access_token}"
            response = await self.http.get(
                metadata.userinfo_endpoint, headers={"Authorization": bearer, "Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise SignInRefused("misconfigured", log_detail=f"userinfo endpoint: {_describe(exc)}") from exc
        if response.status_code in (401, 403):
            challenge = _clip(response.headers.get("www-authenticate", ""))
            raise SignInRefused(
                "invalid_response", log_detail=f"userinfo endpoint refused the access token: {challenge}"
            )
        claims = _json_or_empty(response)
        if response.status_code != 200 or not claims:
            raise SignInRefused(
                "misconfigured",
                log_detail=f"userinfo endpoint answered {response.status_code} "
                f"({response.headers.get('content-type', 'no content type')}), not a JSON object",
            )
        if claims.get("sub") != authentication.subject:
            raise SignInRefused(
                "invalid_response",
                log_detail=f"UserInfo is about sub {claims.get('sub')!r}, the ID token about "
                f"{authentication.subject!r}",
            )
        return claims

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
            raise SignInRefused(
                "misconfigured", log_detail=f"discovery at {url} names issuer {issuer!r}, not OIDC_ISSUER"
            )
        try:
            self._metadata = ProviderMetadata(
                issuer=issuer,
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
                userinfo_endpoint=str(document.get("userinfo_endpoint") or "") or None,
                signing_algorithms=tuple(document.get("id_token_signing_alg_values_supported") or ("RS256",)),
                token_auth_methods=tuple(
                    document.get("token_endpoint_auth_methods_supported") or ("client_secret_basic",)
                ),
            )
        except KeyError as exc:
            raise SignInRefused("misconfigured", log_detail=f"discovery document lacks {exc}") from exc
        self._metadata_at = self.clock()
        self._keys = None
        return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self.metadata()
            try:
                self._keys = KeySet.import_key_set(await self._get_json(metadata.jwks_uri))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as exc:
                raise SignInRefused("misconfigured", log_detail=f"unusable JWKS: {exc}") from exc
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
            raise SignInRefused("misconfigured", log_detail=f"token endpoint: {_describe(exc)}") from exc
        body = _json_or_empty(response)
        if response.status_code != 200 or not body:
            error = str(body.get("error") or f"HTTP {response.status_code}")
            # What the provider says about it, less anything we sent that must stay out of logs.
            sent = (code, verifier, self.client_secret)
            description = _clip(str(body.get("error_description", "")), secrets=sent)
            # invalid_grant: the code ran out or was used (the employee can start over); anything
            # else (invalid_client: a wrong secret, unauthorized_client, a 5xx ...) is the set-up.
            reason = "invalid_response" if error == "invalid_grant" else "misconfigured"
            answered = f"{error} (HTTP {response.status_code})"
            raise SignInRefused(reason, log_detail=f"token endpoint answered {answered}: {description}")
        return body

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise SignInRefused("misconfigured", log_detail=f"{url}: {_describe(exc)}") from exc
        document = _json_or_empty(response)
        if not document:
            raise SignInRefused("misconfigured", log_detail=f"{url}: not a JSON object")
        return document


def _describe(exc: httpx.HTTPError) -> str:
    """An HTTP failure in words for the log: "ConnectError: [Errno 111] Connection refused"."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _clip(text: str, *, secrets: tuple[str, ...] = (), limit: int = 300) -> str:
    """Someone else's text for our log: one line, bounded, without what must never be logged."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


router = APIRouter(prefix="/auth/oidc", tags=["auth"], include_in_schema=False)


# What the employee sees for each refusal: 403 for who they are, 503 for our set-up, 400 otherwise.
_STATUS = {
    "unknown_user": 403,
    "unverified_email": 403,
    "account_taken": 403,
    "no_email": 403,
    "misconfigured": 503,
}


def _refused(request: Request, refusal: SignInRefused) -> Response:
    log.warning("work account sign-in refused", reason=refusal.reason, detail=str(refusal))
    # "Prøv igjen" only where trying again can help: not for the set-up nor for who someone is.
    retry = refusal.reason in {"expired", "invalid_response", "provider_error"}
    return render(
        request,
        "error.html",
        {
            "title_key": "login.failed.title",
            "message_key": f"login.failed.{refusal.reason}",
            "message_values": refusal.values,
            "retry_href": SIGN_IN_PATH if retry else None,
        },
        status_code=_STATUS.get(refusal.reason, 400),
    )


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def _on_the_public_url(request: Request, settings: PortalSettings) -> RedirectResponse | None:
    """Locally, a browser on http://localhost:8000 while PUBLIC_URL says http://127.0.0.1:8000 would
    keep the pending sign-in in a cookie the callback (on PUBLIC_URL) never sees: send it over to
    PUBLIC_URL first. Only between loopback names in local mode, so no proxy can loop it."""
    public = urlsplit(settings.public_url)
    if not settings.is_local or request.url.hostname not in _LOOPBACK_HOSTS:
        return None
    if public.hostname not in _LOOPBACK_HOSTS or (request.url.scheme, request.url.netloc) == (
        public.scheme,
        public.netloc,
    ):
        return None
    target = urlunsplit((public.scheme, public.netloc, request.url.path, request.url.query, ""))
    return RedirectResponse(target, status_code=307)


@router.get("/login", dependencies=[Depends(limit_sign_in)])
async def oidc_login(request: Request, settings: Settings) -> Response:
    """Start "Bruk jobbkonto": off to the identity provider."""
    client: OidcClient | None = request.app.state.oidc
    if client is None:
        return _refused(request, SignInRefused("not_configured"))
    if (moved := _on_the_public_url(request, settings)) is not None:
        return moved
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
        authentication = await client.finish(params=dict(request.query_params), pending=pending)
        employee = await employee_for(client, db, authentication, settings.oidc_verified_email_domain_set)
    except SignInRefused as refusal:
        return _refused(request, refusal)
    assert pending is not None  # finish() refused otherwise
    response = RedirectResponse(safe_next(pending.next_path), status_code=303)
    await start_session(request, response, employee, secure=not settings.is_local)
    log.info("signed in with work account", employee_id=str(employee.id))
    return response


async def employee_for(
    client: OidcClient, db: AsyncSession, authentication: Authentication, trusted_domains: frozenset[str]
) -> Employee:
    """The employee bound to this account; at its first sign-in, the one its verified e-mail names
    (from the ID token, or from UserInfo when the ID token carries none), bound from then on."""
    issuer, subject = authentication.issuer, authentication.subject
    employee = await bound_employee(db, issuer=issuer, subject=subject)
    if employee is not None:
        return employee
    claims = authentication.claims
    if claimed_email(claims) is None:
        await db.commit()  # ends the read: no connection held while the provider answers
        claims = await client.userinfo(authentication)
    email = verified_email(claims, trusted_domains=trusted_domains)
    return await bind_by_email(db, issuer=issuer, subject=subject, email=email)


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
