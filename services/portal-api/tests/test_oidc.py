"""'Bruk jobbkonto' against a small fake OpenID Connect provider with a real RSA key: a good ID token
signs the employee in; a bad nonce, audience, issuer, signature, expiry or state is refused."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI, Form, Header, HTTPException
from joserfc import jwt
from joserfc.jwk import RSAKey
from mport_shared.db import create_engine, session_factory
from mport_shared.testing import MakeDatabase
from portal_api.auth.oidc import s256_challenge
from portal_api.main import create_app
from portal_api.seed import KARI, seed
from portal_api.settings import PortalSettings

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

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/tenant-1/v2.0/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": ISSUER,
                "authorization_endpoint": "https://login.example.test/tenant-1/oauth2/v2.0/authorize",
                "token_endpoint": "https://login.example.test/tenant-1/oauth2/v2.0/token",
                "jwks_uri": "https://login.example.test/tenant-1/discovery/v2.0/keys",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/tenant-1/discovery/v2.0/keys")
        async def keys() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.post("/tenant-1/oauth2/v2.0/token")
        async def token(
            grant_type: str = Form(),
            code: str = Form(),
            redirect_uri: str = Form(),
            code_verifier: str = Form(),
            authorization: str = Header(),
        ) -> dict[str, Any]:
            self.token_requests += 1
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
            return {
                "access_token": "opaque",
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
            }

        return app

    def authorize(self, authorization_url: str, **claims: Any) -> dict[str, str]:
        """What the provider does once the employee has signed in: a code for the redirect URI."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        now = int(time.time())
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            code_challenge=query["code_challenge"],
            nonce=query["nonce"],
            claims={
                "iss": ISSUER,
                "aud": CLIENT_ID,
                "sub": "entra-object-id-1",
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
                "nonce": query["nonce"],
                "email": KARI.email,
                **claims,
            },
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

    async def sign_in(self, client: httpx.AsyncClient, **claims: Any) -> httpx.Response:
        location = await self.start(client)
        return await client.get("/auth/oidc/callback", params=self.provider.authorize(location, **claims))


MakeRig = Callable[..., Awaitable[SignInRig]]


@pytest.fixture
async def make_rig(make_database: MakeDatabase, amqp_url: str) -> AsyncIterator[MakeRig]:
    managers: list[LifespanManager] = []

    async def make(**settings: str) -> SignInRig:
        database_url = await make_database("portal_api:migrations")
        engine = create_engine(database_url)
        await seed(session_factory(engine))
        await engine.dispose()
        provider = FakeProvider()
        values: dict[str, Any] = {
            "PORTAL_MODE": "production",
            "SESSION_SECRET": "s" * 40,
            "OIDC_ISSUER": ISSUER,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            **settings,
        }
        portal = create_app(
            PortalSettings(database_url=database_url, amqp_url=amqp_url, public_url=PUBLIC_URL, **values),
            oidc_transport=httpx.ASGITransport(app=provider.app()),
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
        session = next(c for c in response.headers.get_list("set-cookie") if c.startswith("mport_session="))
        assert "secure" in session.lower()
        assert "httponly" in session.lower()
        assert "samesite=lax" in session.lower()
        me = await client.get("/api/v1/me")
        assert me.status_code == 200
        assert me.json()["email"] == KARI.email
        assert rig.provider.token_requests == 1


async def test_entra_preferred_username_names_the_employee_when_there_is_no_email(rig: SignInRig) -> None:
    async with rig.client() as client:
        response = await rig.sign_in(client, email=None, preferred_username="Kari.Nordmann@demo.no")
        assert response.status_code == 303
        assert (await client.get("/api/v1/me")).json()["email"] == KARI.email


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
