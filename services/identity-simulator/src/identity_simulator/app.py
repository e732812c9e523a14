"""The provider's HTTP app: discovery, authorize with a sign-in page, token, UserInfo, JWKS, logout,
and the simulator's own routes (health, people)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from mport_shared.logging import get_logger
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, ImmutableMultiDict

from identity_simulator.authorize import (
    SUPPORTED_SCOPES,
    AuthorizationRefused,
    UntrustedRedirect,
    check_authorization_request,
    redirect_with,
)
from identity_simulator.client_auth import AUTH_METHODS, ClientUnauthenticated, authenticate_client
from identity_simulator.directory import Account, Directory, EmailTaken, UnknownAccount, normalise_email
from identity_simulator.grants import AuthorizationRequest, Grants, OAuthError
from identity_simulator.id_token import CLAIMS_SUPPORTED, profile_claims, sign_id_token
from identity_simulator.keys import ALGORITHM, load_signing_key, public_key_set
from identity_simulator.pages import error_page, message_page, render
from identity_simulator.settings import ClientConfig, IdentitySimSettings

log = get_logger(__name__)

# RFC 6749 §5.1: token responses (and, here, UserInfo) must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
REALM = "identity-simulator"
FORM_TYPE = "application/x-www-form-urlencoded"


class PersonView(BaseModel):
    sub: str
    name: str
    email: str
    email_verified: bool
    typed: bool


class PersonChange(BaseModel):
    """A change to a person; fields left out keep their value, and `sub` never changes."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str | None = Field(default=None, min_length=1)
    email_verified: bool | None = None


def _view(account: Account) -> PersonView:
    return PersonView(
        sub=account.sub,
        name=account.name,
        email=account.email,
        email_verified=account.email_verified,
        typed=account.typed,
    )


def _multi(items: ImmutableMultiDict[str, Any] | FormData) -> dict[str, list[str]]:
    """Every value of every parameter (files are no parameter of ours and are left out)."""
    params: dict[str, list[str]] = {}
    for name, value in items.multi_items():
        if isinstance(value, str):
            params.setdefault(name, []).append(value)
    return params


def _single(params: Mapping[str, list[str]]) -> dict[str, str]:
    """Parameters sent once; RFC 6749 §3.2: one sent more than once makes the request invalid."""
    doubled = sorted(name for name, values in params.items() if len(values) > 1)
    if doubled:
        raise OAuthError("invalid_request", f"parameters sent more than once: {', '.join(doubled)}")
    return {name: values[0] for name, values in params.items()}


def _oauth_error(exc: OAuthError) -> JSONResponse:
    body = {"error": exc.error, "error_description": exc.description}
    if isinstance(exc, ClientUnauthenticated):
        headers = NO_STORE | {"WWW-Authenticate": f'Basic realm="{REALM}"'}
        return JSONResponse(body, status_code=status.HTTP_401_UNAUTHORIZED, headers=headers)
    return JSONResponse(body, status_code=status.HTTP_400_BAD_REQUEST, headers=NO_STORE)


def _bearer_refused(error: str | None = None, description: str = "") -> JSONResponse:
    # RFC 6750 §3.1: without credentials, a bare challenge; with bad ones, invalid_token.
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}", error_description="{description}"'
    body = {"error": error or "invalid_request", "error_description": description or "no access token"}
    return JSONResponse(
        body, status_code=status.HTTP_401_UNAUTHORIZED, headers=NO_STORE | {"WWW-Authenticate": challenge}
    )


def create_app(
    settings: IdentitySimSettings,
    *,
    clock: Callable[[], float] = time.time,
    signing_key: RSAKey | None = None,
) -> FastAPI:
    """Build the provider for `settings`: its people, clients and key, its state in memory.

    `clock` (seconds) measures every lifetime, so tests can let a code expire without waiting."""
    key = signing_key if signing_key is not None else load_signing_key(settings.key_file)
    clients = {c.client_id: c for c in settings.clients}
    directory = Directory(
        settings.people, subject_key=settings.subject_key, typed_email_verified=settings.typed_email_verified
    )
    grants = Grants(
        clock=clock,
        sign_in_ttl_s=settings.sign_in_ttl_s,
        code_ttl_s=settings.code_ttl_s,
        access_token_ttl_s=settings.access_token_ttl_s,
    )
    app = FastAPI(title="Identity provider simulator (OpenID Connect)", version="1.0")
    app.include_router(
        _oidc_router(
            settings=settings, clients=clients, directory=directory, grants=grants, key=key, clock=clock
        )
    )
    app.include_router(_simulator_router(directory))
    return app


def _oidc_router(
    *,
    settings: IdentitySimSettings,
    clients: Mapping[str, ClientConfig],
    directory: Directory,
    grants: Grants,
    key: RSAKey,
    clock: Callable[[], float],
) -> APIRouter:
    issuer = settings.issuer
    router = APIRouter(prefix=settings.base_path, tags=["OpenID Connect"])
    decision_path = f"{settings.base_path}/authorize/decision"

    def sign_in_page(
        sign_in_id: str,
        request: AuthorizationRequest,
        *,
        error: str = "",
        email: str = "",
        status_code: int = 200,
    ) -> Response:
        return render(
            "sign_in.html",
            {
                "client_name": clients[request.client_id].display_name,
                "people": directory.listed(),
                "sign_in_id": sign_in_id,
                "decision_url": decision_path,
                "typed_email_verified": settings.typed_email_verified,
                "error": error,
                "email": email,
            },
            status_code=status_code,
        )

    def back_to_client(request: AuthorizationRequest, **params: str | None) -> Response:
        # RFC 9207: `iss` tells the client which provider answered.
        location = redirect_with(request.redirect_uri, {**params, "state": request.state, "iss": issuer})
        return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)

    @router.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        """OpenID Connect Discovery 1.0 §3."""
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "end_session_endpoint": f"{issuer}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "scopes_supported": list(SUPPORTED_SCOPES),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": list(CLAIMS_SUPPORTED),
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "ui_locales_supported": ["nb"],
        }

    @router.get("/jwks")
    async def jwks() -> dict[str, object]:
        """The public signing key set."""
        return public_key_set(key)

    async def authorize(params: dict[str, list[str]]) -> Response:
        try:
            request = check_authorization_request(params, clients)
        except UntrustedRedirect as refusal:
            log.warning("authorization_refused", reason=refusal.message)
            return error_page(refusal.message)
        except AuthorizationRefused as refusal:
            log.info("authorization_refused", error=refusal.error, description=refusal.description)
            location = redirect_with(
                refusal.redirect_uri,
                {
                    "error": refusal.error,
                    "error_description": refusal.description,
                    "state": refusal.state,
                    "iss": issuer,
                },
            )
            return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)
        return sign_in_page(grants.hold(request), request)

    @router.get("/authorize")
    async def authorize_get(request: Request) -> Response:
        """The authorization endpoint (OIDC Core §3.1.2.1): checks the request, shows the sign-in page."""
        return await authorize(_multi(request.query_params))

    @router.post("/authorize")
    async def authorize_post(request: Request) -> Response:
        """The same as GET, with the parameters form-encoded (OIDC Core §3.1.2.1 requires both)."""
        return await authorize(_multi(await request.form()))

    @router.post("/authorize/decision")
    async def decision(request: Request) -> Response:
        """The person's choice on the sign-in page: a listed person, a typed address, or cancel."""
        form = {k: v[0] for k, v in _multi(await request.form()).items()}
        sign_in_id = form.get("sign_in", "")
        waiting = grants.waiting(sign_in_id)
        if waiting is None:
            return error_page("Innloggingen er utløpt eller allerede fullført.")
        if "cancel" in form:
            grants.finish_sign_in(sign_in_id)
            log.info("sign_in_cancelled", client_id=waiting.client_id)
            return back_to_client(waiting, error="access_denied", error_description="the person cancelled")
        account: Account | None = None
        if "person" in form:
            account = directory.get(form["person"])
            if account is None or account.typed:
                return sign_in_page(sign_in_id, waiting, error="Velg en av personene.", status_code=400)
        elif "email" in form:
            email = normalise_email(form["email"])
            if email is None:
                return sign_in_page(
                    sign_in_id,
                    waiting,
                    error="Skriv en gyldig e-postadresse, for eksempel ola.nordmann@example.no.",
                    email=form["email"],
                    status_code=400,
                )
            account = directory.typed(email)
        else:
            return sign_in_page(
                sign_in_id, waiting, error="Velg en person eller skriv en e-postadresse.", status_code=400
            )
        grants.finish_sign_in(sign_in_id)
        code = grants.issue_code(waiting, sub=account.sub)
        log.info("signed_in", client_id=waiting.client_id, sub=account.sub, typed=account.typed)
        return back_to_client(waiting, code=code)

    @router.post("/token")
    async def token(request: Request) -> Response:
        """The token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5): a code and its verifier for tokens."""
        content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != FORM_TYPE:
            return _oauth_error(OAuthError("invalid_request", f"the body must be {FORM_TYPE}"))
        try:
            form = _single(_multi(await request.form()))
            client = authenticate_client(
                authorization=request.headers.get("authorization"), form=form, clients=clients
            )
            grant_type = form.get("grant_type")
            if not grant_type:
                raise OAuthError("invalid_request", "grant_type is missing")
            if grant_type != "authorization_code":
                raise OAuthError("unsupported_grant_type", "only authorization_code is supported")
            for name in ("code", "redirect_uri", "code_verifier"):
                if not form.get(name):
                    raise OAuthError("invalid_request", f"{name} is missing")
            code = form["code"]
            redemption = grants.redeem(
                code,
                client_id=client.client_id,
                redirect_uri=form["redirect_uri"],
                code_verifier=form["code_verifier"],
            )
        except OAuthError as refusal:
            log.info("token_refused", error=refusal.error, description=refusal.description)
            return _oauth_error(refusal)
        account = directory.get(redemption.sub)
        assert account is not None  # accounts are never removed
        access_token = grants.issue_access_token(code, redemption)
        id_token = sign_id_token(
            key=key,
            issuer=issuer,
            redemption=redemption,
            account=account,
            now=clock(),
            ttl_s=settings.id_token_ttl_s,
            with_email=settings.email_in_id_token,
        )
        log.info("tokens_issued", client_id=client.client_id, sub=account.sub)
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": int(grants.access_token_ttl_s),
                "id_token": id_token,
                "scope": " ".join(redemption.scopes),
            },
            headers=NO_STORE,
        )

    async def userinfo(request: Request) -> Response:
        scheme, _, access_token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not access_token.strip():
            return _bearer_refused()
        grant = grants.access(access_token.strip())
        account = None if grant is None else directory.get(grant.sub)
        if grant is None or account is None:
            return _bearer_refused("invalid_token", "the access token is unknown, revoked or expired")
        return JSONResponse(profile_claims(account, grant.scopes), headers=NO_STORE)

    @router.get("/userinfo")
    async def userinfo_get(request: Request) -> Response:
        """UserInfo (OIDC Core §5.3) for a bearer access token: what the granted scopes allow."""
        return await userinfo(request)

    @router.post("/userinfo")
    async def userinfo_post(request: Request) -> Response:
        """The same as GET (OIDC Core §5.3 requires both)."""
        return await userinfo(request)

    async def logout(params: dict[str, list[str]]) -> Response:
        form = {k: v[0] for k, v in params.items()}
        redirect_uri = form.get("post_logout_redirect_uri")
        client_id = form.get("client_id")
        hint = form.get("id_token_hint")
        if hint:
            try:
                # Our own token, expired or not (RP-Initiated Logout §2): it names the client.
                claims = jwt.decode(hint, key, algorithms=[ALGORITHM]).claims
            except (JoseError, ValueError) as exc:
                log.info("logout_refused", reason=f"id_token_hint: {exc}")
                return error_page("Utloggingen kom med et ID-token som ikke er utstedt her.")
            audience = claims.get("aud")
            if claims.get("iss") != issuer or (client_id and audience != client_id):
                return error_page("Utloggingen kom med et ID-token for en annen tjeneste.")
            client_id = client_id or (audience if isinstance(audience, str) else None)
        if redirect_uri:
            if client_id and client_id not in clients:
                return error_page(f"Tjenesten «{client_id}» er ikke registrert hos denne leverandøren.")
            # The client's own addresses; with no client named, any registered one.
            allowed = (
                clients[client_id].post_logout_redirect_uris
                if client_id
                else tuple(uri for c in clients.values() for uri in c.post_logout_redirect_uris)
            )
            if redirect_uri not in allowed:
                log.info("logout_refused", reason="post_logout_redirect_uri not registered")
                return error_page(f"Adressen «{redirect_uri}» er ikke registrert for utlogging.")
            location = redirect_with(redirect_uri, {"state": form.get("state")})
            return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)
        return message_page(
            "Du er logget ut",
            "Denne lokale identitetsleverandøren husker ingen innlogging, så det er ingenting mer å gjøre.",
        )

    @router.get("/logout")
    async def logout_get(request: Request) -> Response:
        """RP-Initiated Logout 1.0: back to a registered post_logout_redirect_uri, or a page."""
        return await logout(_multi(request.query_params))

    @router.post("/logout")
    async def logout_post(request: Request) -> Response:
        """The same as GET, form-encoded."""
        return await logout(_multi(await request.form()))

    return router


def _simulator_router(directory: Directory) -> APIRouter:
    router = APIRouter(tags=["simulator"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "ok"}

    @router.get("/simulator/people")
    async def list_people() -> list[PersonView]:
        """Everyone the provider knows, listed people first, with their `sub`."""
        return [_view(a) for a in directory.all()]

    @router.put("/simulator/people/{sub}")
    async def change_person(sub: str, change: PersonChange) -> PersonView:
        """Give someone a new e-mail address, name or verification state; their `sub` stays."""
        try:
            account = directory.change(
                sub, email=change.email, name=change.name, email_verified=change.email_verified
            )
        except UnknownAccount as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no person with sub {sub!r}") from exc
        except EmailTaken as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, f"another person has the e-mail {exc}") from exc
        log.info("person_changed", sub=account.sub, fields=sorted(change.model_fields_set))
        return _view(account)

    return router
