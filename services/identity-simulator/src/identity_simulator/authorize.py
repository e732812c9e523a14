"""Checking an authorization request (OpenID Connect Core §3.1.2, RFC 6749 §4.1, RFC 7636 §4.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode, urlsplit

from identity_simulator.grants import AuthorizationRequest, OAuthError
from identity_simulator.settings import ClientConfig

SUPPORTED_SCOPES = ("openid", "profile", "email")
# BASE64URL of a SHA-256 digest, without padding, is exactly 43 characters.
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class UntrustedRedirect(Exception):
    """RFC 6749 §4.1.2.1: the client or redirect URI is missing, unknown or doubled, so the error is
    shown to the person and never sent to an address nobody registered."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthorizationRefused(OAuthError):
    """An error to send back to the client's (registered) redirect URI."""

    def __init__(self, error: str, description: str, *, redirect_uri: str, state: str | None) -> None:
        super().__init__(error, description)
        self.redirect_uri = redirect_uri
        self.state = state


def check_authorization_request(
    params: Mapping[str, Sequence[str]], clients: Mapping[str, ClientConfig]
) -> AuthorizationRequest:
    """The request, if it is one this provider grants; raises UntrustedRedirect or
    AuthorizationRefused otherwise. `params` maps each parameter to every value it was sent with."""
    client_ids = params.get("client_id", [])
    if len(client_ids) != 1 or not client_ids[0]:
        raise UntrustedRedirect("Forespørselen mangler client_id, eller har den flere ganger.")
    client = clients.get(client_ids[0])
    if client is None:
        raise UntrustedRedirect(f"Tjenesten «{client_ids[0]}» er ikke registrert hos denne leverandøren.")
    redirect_uris = params.get("redirect_uri", [])
    if len(redirect_uris) != 1 or not redirect_uris[0]:
        raise UntrustedRedirect("Forespørselen mangler redirect_uri, eller har den flere ganger.")
    redirect_uri = redirect_uris[0]
    if redirect_uri not in client.redirect_uris:
        raise UntrustedRedirect(
            f"Adressen «{redirect_uri}» er ikke registrert for tjenesten «{client.display_name}»."
        )

    states = params.get("state", [])
    state = states[0] if len(states) == 1 and states[0] else None

    def refuse(error: str, description: str) -> AuthorizationRefused:
        return AuthorizationRefused(error, description, redirect_uri=redirect_uri, state=state)

    # RFC 6749 §3.1: a parameter must not be sent more than once.
    doubled = sorted(name for name, values in params.items() if len(values) > 1)
    if doubled:
        raise refuse("invalid_request", f"parameters sent more than once: {', '.join(doubled)}")

    def one(name: str) -> str:
        values = params.get(name, [])
        return values[0] if values else ""

    if "request" in params:
        raise refuse("request_not_supported", "request objects are not supported")
    if "request_uri" in params:
        raise refuse("request_uri_not_supported", "request_uri is not supported")
    response_type = one("response_type")
    if not response_type:
        raise refuse("invalid_request", "response_type is missing")
    if response_type != "code":
        raise refuse("unsupported_response_type", "only response_type=code (the code flow) is supported")
    response_mode = one("response_mode")
    if response_mode and response_mode != "query":
        raise refuse("invalid_request", "only response_mode=query is supported")
    requested = one("scope").split()
    if "openid" not in requested:
        raise refuse("invalid_request", "scope must include openid")
    code_challenge = one("code_challenge")
    if not code_challenge:
        raise refuse("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
    # RFC 7636 §4.3: a missing method means "plain", which this provider does not accept.
    if one("code_challenge_method") != "S256":
        raise refuse("invalid_request", "code_challenge_method must be S256")
    if not _S256_CHALLENGE.match(code_challenge):
        raise refuse("invalid_request", "code_challenge is not a BASE64URL-encoded SHA-256 digest")
    # There is never a session here to sign someone in silently.
    if "none" in one("prompt").split():
        raise refuse("login_required", "the person must choose an account on the sign-in page")

    # RFC 6749 §3.3: scope values the provider does not know are left out of what is granted.
    scopes = tuple(s for s in SUPPORTED_SCOPES if s in requested)
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        nonce=one("nonce") or None,
        code_challenge=code_challenge,
    )


def redirect_with(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """The redirect URI with the response parameters added to its query (RFC 6749 §3.1.2)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if urlsplit(redirect_uri).query else ("" if redirect_uri.endswith("?") else "?")
    return f"{redirect_uri}{separator}{query}"
