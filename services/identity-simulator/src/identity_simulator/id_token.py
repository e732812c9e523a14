"""The ID token (OpenID Connect Core §2) and the claims UserInfo answers with (§5.4)."""

from __future__ import annotations

from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from identity_simulator.directory import Account
from identity_simulator.grants import Redemption
from identity_simulator.keys import ALGORITHM

CLAIMS_SUPPORTED = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "name",
    "preferred_username",
    "email",
    "email_verified",
)


def profile_claims(account: Account, scopes: tuple[str, ...]) -> dict[str, Any]:
    """What the `profile` and `email` scopes give (§5.4), for UserInfo."""
    claims: dict[str, Any] = {"sub": account.sub}
    if "profile" in scopes:
        # The sign-in name, as Entra ID's preferred_username: not verified, not unique (§5.7).
        claims["name"] = account.name
        claims["preferred_username"] = account.email
    if "email" in scopes:
        claims["email"] = account.email
        claims["email_verified"] = account.email_verified
    return claims


def sign_id_token(
    *,
    key: RSAKey,
    issuer: str,
    redemption: Redemption,
    account: Account,
    now: float,
    ttl_s: int,
    with_email: bool,
) -> str:
    """A signed ID token for the code's client. It names the person by `sub` only unless
    `with_email`: then `email`, `email_verified` and `name` come along."""
    issued_at = int(now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": account.sub,
        "aud": redemption.client_id,
        "exp": issued_at + ttl_s,
        "iat": issued_at,
        "auth_time": redemption.auth_time,
    }
    if redemption.nonce is not None:
        claims["nonce"] = redemption.nonce
    if with_email:
        claims |= {"email": account.email, "email_verified": account.email_verified, "name": account.name}
    header = {"alg": ALGORITHM, "typ": "JWT", "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])
