"""The provider in process, a clock the tests move, and a relying party that signs in as a browser and
a standard OpenID Connect client would: discovery, the sign-in page's forms, the token request."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from identity_simulator import IdentitySimSettings, create_app
from identity_simulator.keys import new_signing_key
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

ISSUER = "http://127.0.0.1:8083"
CLIENT_ID = "mport-portal"
CLIENT_SECRET = "local-dev-secret"
REDIRECT_URI = "http://127.0.0.1:8000/auth/oidc/callback"


@pytest.fixture(scope="session")
def signing_key() -> RSAKey:
    # One 2048-bit key for the whole run: making one costs CPU the machine shares with others.
    return new_signing_key()


@dataclass
class Clock:
    now: float = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    # Each submit button: (name, value, visible text).
    buttons: list[tuple[str, str, str]] = field(default_factory=list)
    inputs: list[dict[str, str]] = field(default_factory=list)


class FormParser(HTMLParser):
    """The forms of a page, their hidden fields, inputs and buttons (with their text)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.headings: list[str] = []
        self._button: dict[str, str] | None = None
        self._text: list[str] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
        elif tag == "input" and self.forms:
            self.forms[-1].inputs.append(a)
            if a.get("type") == "hidden":
                self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button":
            self._button, self._text = a, []
        elif tag in ("h1", "h2"):
            self._heading = []

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._text.append(data)
        if self._heading is not None:
            self._heading.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            text = " ".join(" ".join(self._text).split())
            self.forms[-1].buttons.append((self._button.get("name", ""), self._button.get("value", ""), text))
            self._button = None
        elif tag in ("h1", "h2") and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None


def parse_forms(html: str) -> FormParser:
    parser = FormParser()
    parser.feed(html)
    return parser


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class SignIn:
    """What a relying party keeps between sending the browser off and the callback."""

    state: str
    nonce: str
    verifier: str
    callback: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.callback["code"]


@dataclass
class RelyingParty:
    """A client of the provider, as the portal is, driving the sign-in page as a person would."""

    http: httpx.AsyncClient
    clock: Clock
    issuer: str = ISSUER
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    redirect_uri: str = REDIRECT_URI

    async def discovery(self) -> dict[str, Any]:
        response = await self.http.get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def authorize_params(self, sign_in: SignIn, **overrides: str | None) -> dict[str, str]:
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email",
            "state": sign_in.state,
            "nonce": sign_in.nonce,
            "code_challenge": s256(sign_in.verifier),
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    async def open_sign_in_page(self, **overrides: str | None) -> tuple[SignIn, httpx.Response]:
        sign_in = SignIn(
            state=secrets.token_urlsafe(16),
            nonce=secrets.token_urlsafe(16),
            verifier=secrets.token_urlsafe(48),
        )
        endpoint = (await self.discovery())["authorization_endpoint"]
        url = f"{endpoint}?{urlencode(self.authorize_params(sign_in, **overrides))}"
        return sign_in, await self.http.get(url)

    async def choose(
        self, page: httpx.Response, *, person: str | None = None, email: str | None = None
    ) -> str:
        """Press the button naming `person`, or type `email` in "Annen e-postadresse"; the Location."""
        forms = parse_forms(page.text).forms
        assert forms, page.text
        if person is not None:
            form = next(f for f in forms if any(person in text for _, _, text in f.buttons))
            name, value, _ = next(b for b in form.buttons if person in b[2])
            data = form.fields | {name: value}
        else:
            assert email is not None
            form = next(f for f in forms if any(i.get("name") == "email" for i in f.inputs))
            data = form.fields | {"email": email}
        # As a browser does: the action is resolved against the page's address.
        response = await self.http.post(urljoin(str(page.url), form.action), data=data)
        assert response.status_code == 303, response.text
        return response.headers["location"]

    async def sign_in(
        self, *, person: str | None = "Kari Nordmann", email: str | None = None, **overrides: str | None
    ) -> SignIn:
        sign_in, page = await self.open_sign_in_page(**overrides)
        location = await self.choose(page, person=None if email else person, email=email)
        assert location.split("?")[0] == self.redirect_uri.split("?")[0], location
        sign_in.callback = query_of(location)
        assert sign_in.callback["state"] == sign_in.state
        return sign_in

    async def redeem(
        self, code: str, verifier: str, *, secret: str | None = None, basic: bool = True, **form: str
    ) -> httpx.Response:
        token_endpoint = (await self.discovery())["token_endpoint"]
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        } | form
        secret = self.client_secret if secret is None else secret
        if basic:
            return await self.http.post(token_endpoint, data=data, auth=(self.client_id, secret))
        return await self.http.post(
            token_endpoint, data=data | {"client_id": self.client_id, "client_secret": secret}
        )

    async def tokens(self, sign_in: SignIn) -> dict[str, Any]:
        response = await self.redeem(sign_in.code, sign_in.verifier)
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """OpenID Connect Core §3.1.3.7 with joserfc, against the provider's published JWKS."""
        discovery = await self.discovery()
        keys = KeySet.import_key_set((await self.http.get(discovery["jwks_uri"])).json())
        token = jwt.decode(id_token, keys, algorithms=discovery["id_token_signing_alg_values_supported"])
        jwt.JWTClaimsRegistry(
            now=int(self.clock()),
            iss={"essential": True, "value": discovery["issuer"]},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
        claims: dict[str, Any] = token.claims
        return claims

    async def userinfo(self, access_token: str) -> httpx.Response:
        endpoint = (await self.discovery())["userinfo_endpoint"]
        return await self.http.get(endpoint, headers={"Authorization": f"Bearer {access_token}"})


@asynccontextmanager
async def provider(signing_key: RSAKey, **overrides: Any) -> AsyncIterator[RelyingParty]:
    """A fresh provider with `overrides` on its default settings, and a relying party for it."""
    clock = Clock()
    settings = IdentitySimSettings(**overrides)
    app = create_app(settings, clock=clock, signing_key=signing_key)
    transport = httpx.ASGITransport(app=app)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(settings.issuer))
    async with httpx.AsyncClient(transport=transport, base_url=origin) as http:
        yield RelyingParty(http=http, clock=clock, issuer=settings.issuer)


@pytest.fixture
async def rp(signing_key: RSAKey) -> AsyncIterator[RelyingParty]:
    async with provider(signing_key) as relying_party:
        yield relying_party


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No IDENTITY_SIM_* variable from the environment the tests run in."""
    for name in list(os.environ):
        if name.startswith("IDENTITY_SIM_"):
            monkeypatch.delenv(name)
    return monkeypatch
