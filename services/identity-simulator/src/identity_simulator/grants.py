"""What the provider remembers between requests: sign-ins waiting for a choice, authorization codes
and access tokens, each for a limited time and kept in memory only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field


class OAuthError(Exception):
    """A refusal with an OAuth 2.0 / OpenID Connect error code (RFC 6749 §4.1.2.1, §5.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request (the client and redirect URI are registered ones)."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str


@dataclass(frozen=True, slots=True)
class Redemption:
    """A code exchanged for tokens: whom it names and what was asked for."""

    client_id: str
    sub: str
    scopes: tuple[str, ...]
    nonce: str | None
    auth_time: int


@dataclass(frozen=True, slots=True)
class AccessGrant:
    client_id: str
    sub: str
    scopes: tuple[str, ...]
    expires_at: float


@dataclass(slots=True)
class _Code:
    request: AuthorizationRequest
    sub: str
    auth_time: int
    expires_at: float
    # Kept after use until `forget_at`, so that a second use is recognised and its tokens revoked.
    forget_at: float
    used: bool = False
    access_tokens: list[str] = field(default_factory=list)


def s256(verifier: str) -> str:
    """PKCE S256 (RFC 7636 §4.2): BASE64URL(SHA256(ASCII(verifier))) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def valid_verifier(value: str) -> bool:
    """RFC 7636 §4.1: 43 to 128 unreserved characters."""
    return 43 <= len(value) <= 128 and all(ch in _UNRESERVED for ch in value)


class Grants:
    """Sign-ins, codes and tokens; every lifetime is measured on `clock` (seconds)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sign_in_ttl_s: float,
        code_ttl_s: float,
        access_token_ttl_s: float,
    ) -> None:
        self._clock = clock
        self._sign_in_ttl_s = sign_in_ttl_s
        self._code_ttl_s = code_ttl_s
        self._access_token_ttl_s = access_token_ttl_s
        self._sign_ins: dict[str, tuple[AuthorizationRequest, float]] = {}
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, AccessGrant] = {}

    @property
    def access_token_ttl_s(self) -> float:
        return self._access_token_ttl_s

    def hold(self, request: AuthorizationRequest) -> str:
        """Keep a request while the sign-in page waits for a choice; the id goes into the page."""
        self._forget_expired()
        sign_in_id = secrets.token_urlsafe(24)
        self._sign_ins[sign_in_id] = (request, self._clock() + self._sign_in_ttl_s)
        return sign_in_id

    def waiting(self, sign_in_id: str) -> AuthorizationRequest | None:
        held = self._sign_ins.get(sign_in_id)
        if held is None or self._clock() >= held[1]:
            return None
        return held[0]

    def finish_sign_in(self, sign_in_id: str) -> None:
        self._sign_ins.pop(sign_in_id, None)

    def issue_code(self, request: AuthorizationRequest, *, sub: str) -> str:
        """A fresh single-use code for `sub`, bound to the request's client, redirect URI, PKCE
        challenge and nonce."""
        self._forget_expired()
        now = self._clock()
        code = secrets.token_urlsafe(32)
        expires_at = now + self._code_ttl_s
        self._codes[code] = _Code(
            request=request,
            sub=sub,
            auth_time=int(now),
            expires_at=expires_at,
            forget_at=max(expires_at, now + self._access_token_ttl_s),
        )
        return code

    def redeem(self, code: str, *, client_id: str, redirect_uri: str, code_verifier: str) -> Redemption:
        """RFC 6749 §4.1.3 and RFC 7636 §4.6. Any attempt by the code's client uses it up, so a
        verifier cannot be guessed at; a second use also revokes the tokens the first one gave."""
        record = self._codes.get(code)
        now = self._clock()
        if record is None or now >= record.forget_at:
            raise OAuthError("invalid_grant", "unknown authorization code")
        if record.request.client_id != client_id:
            raise OAuthError("invalid_grant", "the code was issued to another client")
        if record.used:
            for token in record.access_tokens:
                self._tokens.pop(token, None)
            record.access_tokens.clear()
            raise OAuthError("invalid_grant", "the code was used already; its tokens are revoked")
        record.used = True
        if now >= record.expires_at:
            raise OAuthError("invalid_grant", "the code has expired")
        if redirect_uri != record.request.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request's")
        if not valid_verifier(code_verifier):
            raise OAuthError("invalid_grant", "code_verifier must be 43 to 128 unreserved characters")
        if not hmac.compare_digest(s256(code_verifier), record.request.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        return Redemption(
            client_id=client_id,
            sub=record.sub,
            scopes=record.request.scopes,
            nonce=record.request.nonce,
            auth_time=record.auth_time,
        )

    def issue_access_token(self, code: str, redemption: Redemption) -> str:
        """An opaque bearer token for UserInfo, revoked with the code if that is used again."""
        token = secrets.token_urlsafe(32)
        self._tokens[token] = AccessGrant(
            client_id=redemption.client_id,
            sub=redemption.sub,
            scopes=redemption.scopes,
            expires_at=self._clock() + self._access_token_ttl_s,
        )
        record = self._codes.get(code)
        if record is not None:
            record.access_tokens.append(token)
        return token

    def access(self, token: str) -> AccessGrant | None:
        """The grant behind a bearer token, if it is one we issued and it has not expired."""
        grant = self._tokens.get(token)
        if grant is None or self._clock() >= grant.expires_at:
            return None
        return grant

    def _forget_expired(self) -> None:
        # A full sweep on each new entry: a local simulator holds a handful, and nothing grows
        # without bound however long it runs.
        now = self._clock()
        self._sign_ins = {k: v for k, v in self._sign_ins.items() if now < v[1]}
        self._codes = {k: v for k, v in self._codes.items() if now < v.forget_at}
        self._tokens = {k: v for k, v in self._tokens.items() if now < v.expires_at}
