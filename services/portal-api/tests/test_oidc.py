"""'Bruk jobbkonto' against a small fake OpenID Connect provider with a real RSA key: a good ID token
signs the employee in; a bad nonce, audience, issuer, signature, expiry or state is refused. The
e-mail comes from UserInfo when the ID token has none; only a verified e-mail finds an employee, and
only the first time: then the account's (iss, sub) is bound to them. A provider that is away or a
client it does not accept is the set-up's fault, and the page and the log say so."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Form, Header, HTTPException
from fastapi.responses import JSONResponse
from joserfc import jwt
from joserfc.jwk import RSAKey
from mport_shared.db import migrate
from mport_shared.testing import MakeDatabase
from portal_api.auth.oidc import s256_challenge
from portal_api.main import create_app
from portal_api.models import WorkAccount
from portal_api.seed import HAKON, KARI
from portal_api.settings import PortalSettings
from sqlalchemy import select

from .conftest import seed_demo

pytestmark = pytest.mark.integration

ISSUER = "https://login.example.test/tenant-1/v2.0"
CLIENT_ID = "mport-portal"
CLIENT_SECRET = "top/secret+value~1"  # characters that must be form-encoded in the Basic header
PUBLIC_URL = "https://mport.example.test"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    claims: dict[str, Any]
    userinfo: dict[str, Any]


@dataclass
class FakeProvider:
    """An identity provider in miniature: discovery, JWKS, and a token endpoint that checks PKCE."""

    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "key-1"}))
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: int = 0
    # A test may have the provider sign with something else (another key, other claims).
    signing_key: RSAKey | None = None
    header: dict[str, Any] = field(default_factory=lambda: {"alg": "RS256", "kid": "key-1"})
    unsigned: bool = False
    # UserInfo: what it says about the account (per access token), and how often it was asked.
    userinfo: dict[str, dict[str, Any]] = field(default_factory=dict)
    userinfo_requests: int = 0
    # A token endpoint that refuses the client, as a provider does for a wrong secret.
    token_error: tuple[int, dict[str, Any]] | None = None
    # The provider cannot be reached at all (every request fails to connect).
    down: bool = False
    # Run while UserInfo answers (a test's stand-in for other requests meanwhile).
    while_answering_userinfo: Callable[[], Awaitable[None]] | None = None

    def transport(self) -> httpx.AsyncBaseTransport:
        provider, inner = self, httpx.ASGITransport(app=self.app())

        class Transport(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                if provider.down:
                    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
                return await inner.handle_async_request(request)

        return Transport()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/tenant-1/v2.0/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": ISSUER,
                "authorization_endpoint": "https://login.example.test/tenant-1/oauth2/v2.0/authorize",
                "token_endpoint": "https://login.example.test/tenant-1/oauth2/v2.0/token",
                "jwks_uri": "https://login.example.test/tenant-1/discovery/v2.0/keys",
                "userinfo_endpoint": "https://graph.example.test/oidc/userinfo",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/tenant-1/discovery/v2.0/keys")
        async def keys() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.get("/oidc/userinfo")
        async def userinfo(authorization: str = Header(default="")) -> Any:
            self.userinfo_requests += 1
            if self.while_answering_userinfo is not None:
                await self.while_answering_userinfo()
            claims = self.userinfo.get(authorization.removeprefix("Bearer "))
            if claims is None:
                return JSONResponse({}, 401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return claims

        @app.post("/tenant-1/oauth2/v2.0/token")
        async def token(
            grant_type: str = Form(),
            code: str = Form(),
            redirect_uri: str = Form(),
            code_verifier: str = Form(),
            authorization: str = Header(),
        ) -> dict[str, Any]:
            self.token_requests += 1
            if self.token_error is not None:
                return JSONResponse(self.token_error[1], self.token_error[0])
            user, _, password = base64.b64decode(authorization.removeprefix("Basic ")).decode().partition(":")
            grant = self.grants.pop(code, None)  # a code works once
            if (unquote_plus(user), unquote_plus(password)) != (CLIENT_ID, CLIENT_SECRET):
                raise HTTPException(401, "invalid_client")
            if grant is None or grant_type != "authorization_code" or redirect_uri != grant.redirect_uri:
                raise HTTPException(400, "invalid_grant")
            if s256_challenge(code_verifier) != grant.code_challenge:
                raise HTTPException(400, "invalid_grant: PKCE verifier does not match")
            id_token = (
                _unsigned(grant.claims)
                if self.unsigned
                else jwt.encode(self.header, grant.claims, self.signing_key or self.key)
            )
            access_token = secrets.token_urlsafe(16)
            self.userinfo[access_token] = grant.userinfo
            return {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
            }

        return app

    def authorize(
        self, authorization_url: str, *, userinfo: dict[str, Any] | None = None, **claims: Any
    ) -> dict[str, str]:
        """What the provider does once the employee has signed in: a code for the redirect URI.

        `claims` go into the ID token (None leaves a claim out); UserInfo answers `userinfo`, by
        default the ID token's sub with Kari's verified e-mail."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        now = int(time.time())
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            code_challenge=query["code_challenge"],
            nonce=query["nonce"],
            claims={
                k: v
                for k, v in {
                    "iss": ISSUER,
                    "aud": CLIENT_ID,
                    "sub": "entra-object-id-1",
                    "iat": now,
                    "nbf": now,
                    "exp": now + 3600,
                    "nonce": query["nonce"],
                    "email": KARI.email,
                    "email_verified": True,
                    **claims,
                }.items()
                if v is not None
            },
            userinfo=(
                userinfo
                if userinfo is not None
                else {
                    "sub": claims.get("sub", "entra-object-id-1"),
                    "email": KARI.email,
                    "email_verified": True,
                }
            ),
        )
        return {"code": code, "state": query["state"]}


def _unsigned(claims: dict[str, Any]) -> str:
    """An `alg: none` token, as an attacker would forge one."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@dataclass
class SignInRig:
    provider: FakeProvider
    portal: FastAPI

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.portal)
        return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)

    async def start(self, client: httpx.AsyncClient, next_path: str = "/bestillinger") -> str:
        response = await client.get(f"/auth/oidc/login?neste={next_path}")
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith("https://login.example.test/tenant-1/oauth2/v2.0/authorize?")
        return location

    async def sign_in(
        self, client: httpx.AsyncClient, *, userinfo: dict[str, Any] | None = None, **claims: Any
    ) -> httpx.Response:
        location = await self.start(client)
        params = self.provider.authorize(location, userinfo=userinfo, **claims)
        return await client.get("/auth/oidc/callback", params=params)

    async def signed_in_email(self, **claims: Any) -> str | None:
        """Sign in with a fresh browser; the e-mail of the employee it is signed in as, if any."""
        async with self.client() as client:
            await self.sign_in(client, **claims)
            me = await client.get("/api/v1/me")
            return str(me.json()["email"]) if me.status_code == 200 else None

    async def work_accounts(self) -> list[tuple[str, str, str]]:
        """(issuer, sub, employee e-mail) of every binding."""
        async with self.portal.state.runtime.sessions() as db:
            rows = await db.scalars(select(WorkAccount))
            return [(a.issuer, a.subject, a.bound_email) for a in rows]


MakeRig = Callable[..., Awaitable[SignInRig]]


@pytest.fixture
async def make_rig(make_database: MakeDatabase, amqp_url: str) -> AsyncIterator[MakeRig]:
    managers: list[LifespanManager] = []

    async def make(*, database_url: str | None = None, **settings: str) -> SignInRig:
        if database_url is None:
            database_url = await make_database("portal_api:migrations", prepare=seed_demo)
        else:
            await seed_demo(database_url)
        provider = FakeProvider()
        values: dict[str, Any] = {
            "PORTAL_MODE": "production",
            "SESSION_SECRET": "s" * 40,
            "VERIFICATION_CODE_SECRET": "v" * 40,
            "OIDC_ISSUER": ISSUER,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            **settings,
        }
        portal = create_app(
            PortalSettings(
                database_url=database_url,
                amqp_url=amqp_url,
                public_url=values.pop("PUBLIC_URL", PUBLIC_URL),
                **values,
            ),
            oidc_transport=provider.transport(),
        )
        manager = LifespanManager(portal, startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        managers.append(manager)
        return SignInRig(provider=provider, portal=portal)

    yield make
    for manager in reversed(managers):
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def rig(make_rig: MakeRig) -> SignInRig:
    return await make_rig()


async def test_a_good_id_token_signs_the_employee_in(rig: SignInRig) -> None:
    async with rig.client() as client:
        location = await rig.start(client)
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["response_type"] == "code"
        assert query["client_id"] == CLIENT_ID
        assert query["redirect_uri"] == f"{PUBLIC_URL}/auth/oidc/callback"
        assert "openid" in query["scope"].split()
        assert query["code_challenge_method"] == "S256"
        assert len(query["state"]) >= 32
        assert len(query["nonce"]) >= 32
        assert len(query["code_challenge"]) == 43

        response = await client.get("/auth/oidc/callback", params=rig.provider.authorize(location))
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/bestillinger"
        # The __Host- prefix: the browser keeps it only if Secure, Path=/ and without a Domain.
        session = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("__Host-mport_session=")
        )
        assert "secure" in session.lower()
        assert "path=/;" in session.lower()
        assert "domain" not in session.lower()
        assert "httponly" in session.lower()
        assert "samesite=lax" in session.lower()
        me = await client.get("/api/v1/me")
        assert me.status_code == 200
        assert me.json()["email"] == KARI.email
        assert rig.provider.token_requests == 1


async def test_the_email_comes_from_userinfo_when_the_id_token_has_none(rig: SignInRig) -> None:
    # OpenID Connect Core's code flow: the ID token names the account by sub only.
    assert await rig.signed_in_email(email=None, email_verified=None) == KARI.email
    assert rig.provider.userinfo_requests == 1
    assert await rig.work_accounts() == [(ISSUER, "entra-object-id-1", KARI.email)]


async def test_asking_userinfo_holds_no_database_connection(make_rig: MakeRig, tmp_path: Path) -> None:
    """On make run's SQLite the portal has one database connection (test_sqlite_inline.py): the
    callback gives it back before it asks UserInfo, so other requests need not wait meanwhile."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'portal-api.db'}"
    await migrate("portal_api:migrations", database_url)
    rig = await make_rig(database_url=database_url)

    async def another_request() -> None:
        async with rig.portal.state.runtime.sessions() as db:
            await asyncio.wait_for(db.execute(select(WorkAccount)), timeout=5)

    rig.provider.while_answering_userinfo = another_request
    assert await rig.signed_in_email(email=None, email_verified=None) == KARI.email
    assert rig.provider.userinfo_requests == 1


async def test_userinfo_about_another_sub_is_refused(rig: SignInRig) -> None:
    userinfo = {"sub": "someone-else", "email": KARI.email, "email_verified": True}
    async with rig.client() as client:
        response = await rig.sign_in(client, email=None, userinfo=userinfo)
        assert response.status_code == 400
        assert "Innloggingen mislyktes" in response.text
        assert (await client.get("/api/v1/me")).status_code == 401
    assert await rig.work_accounts() == []


async def test_the_id_tokens_email_is_used_without_asking_userinfo(rig: SignInRig) -> None:
    assert await rig.signed_in_email() == KARI.email
    assert rig.provider.userinfo_requests == 0


@pytest.mark.parametrize(
    ("id_token", "userinfo"),
    [
        ({"email_verified": False}, None),
        ({"email_verified": "false"}, None),
        (
            {"email": None, "email_verified": None},
            {"sub": "entra-object-id-1", "email": KARI.email, "email_verified": False},
        ),
    ],
    ids=["in the ID token", "as a string", "in UserInfo"],
)
async def test_an_unverified_email_is_refused(
    rig: SignInRig, id_token: dict[str, Any], userinfo: dict[str, Any] | None
) -> None:
    async with rig.client() as client:
        response = await rig.sign_in(client, userinfo=userinfo, **id_token)
        assert response.status_code == 403
        assert f"Innloggingstjenesten har ikke bekreftet e-postadressen {KARI.email}" in response.text
        assert (await client.get("/api/v1/me")).status_code == 401
    assert await rig.work_accounts() == []


async def test_preferred_username_and_upn_never_name_anyone(rig: SignInRig) -> None:
    # An Entra ID user can edit these; here they claim the administrator's address.
    claims = {"preferred_username": "admin@demo.no", "upn": "admin@demo.no"}
    async with rig.client() as client:
        response = await rig.sign_in(
            client, email=None, email_verified=None, userinfo={"sub": "entra-object-id-1", **claims}, **claims
        )
        assert response.status_code == 403
        assert "Jobbkontoen din oppga ingen e-postadresse" in response.text
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_without_email_verified_an_address_needs_entras_xms_edov_or_a_domain_the_operator_trusts(
    make_rig: MakeRig,
) -> None:
    # Microsoft Entra ID sends `email` but never `email_verified`.
    rig = await make_rig()
    with structlog.testing.capture_logs() as lines:
        assert await rig.signed_in_email(email_verified=None) is None
    [refused] = [line for line in lines if line["event"] == "work account sign-in refused"]
    assert "OIDC_VERIFIED_EMAIL_DOMAINS" in refused["detail"]
    assert await rig.signed_in_email(email_verified=None, xms_edov=True) == KARI.email

    rig = await make_rig(OIDC_VERIFIED_EMAIL_DOMAINS="example.com, @Demo.no")
    assert await rig.signed_in_email(email_verified=None) == KARI.email
    # The domain list never overrides a provider that says "not verified".
    assert await rig.signed_in_email(sub="another-account", email=HAKON.email, email_verified=False) is None


async def test_a_changed_email_does_not_move_the_binding(rig: SignInRig) -> None:
    assert await rig.signed_in_email(sub="kari-account") == KARI.email
    # Kari's account now carries Håkon's address (verified): it still signs in Kari, never Håkon.
    assert await rig.signed_in_email(sub="kari-account", email=HAKON.email) == KARI.email
    # Bound, it needs no e-mail at all any more.
    assert await rig.signed_in_email(sub="kari-account", email=None, email_verified=None) == KARI.email
    # Another account that now has Kari's address cannot take her place.
    async with rig.client() as client:
        response = await rig.sign_in(client, sub="new-account-with-karis-address")
        assert response.status_code == 403
        assert f"Den ansatte med e-postadressen {KARI.email} er allerede knyttet til en annen jobbkonto" in (
            response.text
        )
        assert (await client.get("/api/v1/me")).status_code == 401
    # Håkon's own account still finds him.
    assert await rig.signed_in_email(sub="hakon-account", email=HAKON.email) == HAKON.email
    assert sorted(await rig.work_accounts()) == [
        (ISSUER, "hakon-account", HAKON.email),
        (ISSUER, "kari-account", KARI.email),
    ]
    assert rig.provider.userinfo_requests == 0


SET_UP_MESSAGE = "Innloggingen er ikke riktig satt opp – kontakt mPort-administratoren"


async def test_a_wrong_client_secret_shows_the_set_up_message_and_the_log_says_why(rig: SignInRig) -> None:
    rig.provider.token_error = (
        401,
        {
            "error": "invalid_client",
            "error_description": f"AADSTS7000215: Invalid client secret {CLIENT_SECRET}",
        },
    )
    with structlog.testing.capture_logs() as lines:
        async with rig.client() as client:
            response = await rig.sign_in(client)
    assert response.status_code == 503
    assert SET_UP_MESSAGE in response.text
    assert "Prøv igjen" not in response.text  # it cannot help
    [refused] = [line for line in lines if line["event"] == "work account sign-in refused"]
    assert refused["reason"] == "misconfigured"
    assert "token endpoint answered invalid_client (HTTP 401)" in refused["detail"]
    assert CLIENT_SECRET not in repr(lines)


async def test_an_unreachable_provider_shows_the_set_up_message_and_the_log_says_why(rig: SignInRig) -> None:
    rig.provider.down = True
    with structlog.testing.capture_logs() as lines:
        async with rig.client() as client:
            response = await client.get("/auth/oidc/login")
    assert response.status_code == 503
    assert SET_UP_MESSAGE in response.text
    [refused] = [line for line in lines if line["event"] == "work account sign-in refused"]
    assert (
        "/.well-known/openid-configuration: ConnectError: [Errno 111] Connection refused" in refused["detail"]
    )


async def test_a_provider_away_at_the_token_or_userinfo_endpoint_shows_the_set_up_message(
    rig: SignInRig,
) -> None:
    async with rig.client() as client:
        location = await rig.start(client)  # discovery and keys are fetched
        params = rig.provider.authorize(location)
        rig.provider.down = True
        response = await client.get("/auth/oidc/callback", params=params)
        assert response.status_code == 503
        assert SET_UP_MESSAGE in response.text
    rig.provider.down = False
    async with rig.client() as client:
        await rig.portal.state.oidc._key_set()
        location = await rig.start(client)
        params = rig.provider.authorize(location, email=None)
        original = rig.portal.state.oidc.http.get

        async def userinfo_away(url: str, **kwargs: Any) -> httpx.Response:
            if "userinfo" in url:
                raise httpx.ConnectTimeout("timed out")
            return await original(url, **kwargs)

        rig.portal.state.oidc.http.get = userinfo_away
        response = await client.get("/auth/oidc/callback", params=params)
        assert response.status_code == 503
        assert SET_UP_MESSAGE in response.text


@pytest.mark.parametrize("error", ["unauthorized_client", "invalid_scope", "server_error"])
async def test_an_authorization_error_about_the_set_up_shows_the_set_up_message(
    rig: SignInRig, error: str
) -> None:
    async with rig.client() as client:
        location = await rig.start(client)
        state = parse_qs(urlsplit(location).query)["state"][0]
        response = await client.get("/auth/oidc/callback", params={"error": error, "state": state})
    assert response.status_code == 503
    assert SET_UP_MESSAGE in response.text


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"nonce": "not-the-nonce-we-sent"}, "bad nonce"),
        ({"aud": "another-application"}, "wrong audience"),
        ({"aud": [CLIENT_ID, "another-application"], "azp": "another-application"}, "azp not us"),
        ({"iss": "https://login.example.test/other-tenant/v2.0"}, "wrong issuer"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nonce": None}, "no nonce"),
    ],
)
async def test_an_id_token_with_wrong_claims_is_refused(
    rig: SignInRig, claims: dict[str, Any], why: str
) -> None:
    async with rig.client() as client:
        response = await rig.sign_in(client, **claims)
        assert response.status_code == 400, why
        assert "Innloggingen mislyktes" in response.text
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_an_id_token_with_a_bad_signature_is_refused(rig: SignInRig) -> None:
    # Signed by another RSA key under the published key's id: the signature does not verify.
    rig.provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
    async with rig.client() as client:
        response = await rig.sign_in(client)
        assert response.status_code == 400
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_an_unsigned_id_token_is_refused(rig: SignInRig) -> None:
    rig.provider.unsigned = True
    async with rig.client() as client:
        response = await rig.sign_in(client)
        assert response.status_code == 400
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_a_rotated_signing_key_is_fetched_again(rig: SignInRig) -> None:
    async with rig.client() as client:
        await rig.start(client)  # discovery and keys are cached from here on
        await rig.portal.state.oidc._key_set()
        rig.provider.key = RSAKey.generate_key(2048, parameters={"kid": "key-2"})
        rig.provider.header = {"alg": "RS256", "kid": "key-2"}
        response = await rig.sign_in(client)
        assert response.status_code == 303


async def test_a_callback_with_another_state_or_replayed_is_refused(rig: SignInRig) -> None:
    async with rig.client() as client:
        location = await rig.start(client)
        params = rig.provider.authorize(location)
        forged = await client.get("/auth/oidc/callback", params={**params, "state": "attacker-state"})
        assert forged.status_code == 400
        assert rig.provider.token_requests == 0  # the code was never redeemed
    async with rig.client() as client:
        location = await rig.start(client)
        params = rig.provider.authorize(location)
        assert (await client.get("/auth/oidc/callback", params=params)).status_code == 303
        await client.post("/auth/logout", data={"csrf_token": client.cookies["csrftoken"]})
        replayed = await client.get("/auth/oidc/callback", params=params)
        assert replayed.status_code == 400
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_an_error_from_the_provider_is_shown(rig: SignInRig) -> None:
    async with rig.client() as client:
        location = await rig.start(client)
        state = parse_qs(urlsplit(location).query)["state"][0]
        response = await client.get("/auth/oidc/callback", params={"error": "access_denied", "state": state})
    assert response.status_code == 400
    assert "Innloggingstjenesten avviste innloggingen (access_denied)." in response.text


async def test_someone_who_is_no_employee_gets_a_clear_page(rig: SignInRig) -> None:
    async with rig.client() as client:
        response = await rig.sign_in(client, email="ola.utenfor@example.com")
        assert response.status_code == 403
        assert "Vi fant ingen ansatt med e-postadressen ola.utenfor@example.com i mPort" in response.text
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_without_configuration_the_work_account_button_says_so(make_rig: MakeRig) -> None:
    rig = await make_rig(OIDC_ISSUER="", OIDC_CLIENT_ID="")
    async with rig.client() as client:
        response = await client.get("/auth/oidc/login")
    assert response.status_code == 400
    assert "Innlogging med jobbkonto er ikke satt opp" in response.text


async def test_locally_a_browser_on_another_loopback_name_is_sent_to_the_public_url_first(
    make_rig: MakeRig,
) -> None:
    # PUBLIC_URL is 127.0.0.1; a developer typed localhost. The pending sign-in must be kept in the
    # cookie of the host the provider sends the browser back to.
    rig = await make_rig(PORTAL_MODE="local", PUBLIC_URL="http://127.0.0.1:8000")
    transport = httpx.ASGITransport(app=rig.portal)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as client:
        response = await client.get("/auth/oidc/login?neste=/bestillinger")
        assert response.status_code == 307
        assert response.headers["location"] == "http://127.0.0.1:8000/auth/oidc/login?neste=/bestillinger"
        on_public = await client.get(response.headers["location"])
        assert on_public.status_code == 302
        assert on_public.headers["location"].startswith(
            "https://login.example.test/tenant-1/oauth2/v2.0/authorize?"
        )
    async with httpx.AsyncClient(transport=transport, base_url="http://mport.internal:8000") as client:
        # Not a loopback name (a proxy, say): served where it is asked, never bounced.
        assert (await client.get("/auth/oidc/login")).status_code == 302
