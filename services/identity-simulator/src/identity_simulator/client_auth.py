"""Who is calling the token endpoint: client_secret_basic or client_secret_post (RFC 6749 §2.3.1)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from urllib.parse import unquote_plus

from identity_simulator.grants import OAuthError
from identity_simulator.settings import ClientConfig

AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class ClientUnauthenticated(OAuthError):
    """`invalid_client` (RFC 6749 §5.2): answered with 401 and a WWW-Authenticate challenge."""

    def __init__(self, description: str) -> None:
        super().__init__("invalid_client", description)


def authenticate_client(
    *, authorization: str | None, form: Mapping[str, str], clients: Mapping[str, ClientConfig]
) -> ClientConfig:
    """The registered client whose credentials came with the request, in the header or the body."""
    body_id = form.get("client_id")
    body_secret = form.get("client_secret")
    scheme, _, credentials = (authorization or "").partition(" ")
    if authorization and scheme.lower() == "basic":
        if body_secret is not None:
            # §2.3: a client must not use more than one way of authenticating in one request.
            raise OAuthError("invalid_request", "client credentials in both the header and the body")
        client_id, secret = _basic_credentials(credentials.strip())
        if body_id is not None and body_id != client_id:
            raise OAuthError("invalid_request", "client_id in the body is not the authenticated client")
    elif body_secret is not None:
        if not body_id:
            raise ClientUnauthenticated("client_secret without client_id")
        client_id, secret = body_id, body_secret
    else:
        raise ClientUnauthenticated("no client authentication (client_secret_basic or client_secret_post)")
    client = clients.get(client_id)
    # Compared in constant time; an unknown client is refused just like a wrong secret.
    expected = client.client_secret if client is not None else ""
    if client is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise ClientUnauthenticated("unknown client or wrong client secret")
    return client


def _basic_credentials(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ClientUnauthenticated("malformed Basic credentials") from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise ClientUnauthenticated("malformed Basic credentials")
    # §2.3.1: both parts are form-encoded before they go into the header.
    return unquote_plus(client_id), unquote_plus(secret)
