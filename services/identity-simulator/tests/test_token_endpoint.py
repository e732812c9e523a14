"""The token endpoint's refusals: client authentication, the code's single use and lifetime, PKCE."""

from __future__ import annotations

import base64

import pytest
from joserfc.jwk import RSAKey

from .conftest import CLIENT_ID, CLIENT_SECRET, RelyingParty, provider


async def test_a_wrong_client_secret_is_401_invalid_client_with_a_challenge_and_spends_no_code(
    rp: RelyingParty,
) -> None:
    sign_in = await rp.sign_in()

    response = await rp.redeem(sign_in.code, sign_in.verifier, secret="not-the-secret")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    # The code was never looked at: the client with the right secret still gets its tokens.
    assert (await rp.redeem(sign_in.code, sign_in.verifier)).status_code == 200


async def test_a_wrong_secret_by_client_secret_post_is_401_invalid_client(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()

    response = await rp.redeem(sign_in.code, sign_in.verifier, secret="not-the-secret", basic=False)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers


async def test_no_client_authentication_or_an_unknown_client_is_401_invalid_client(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()
    form = {
        "grant_type": "authorization_code",
        "code": sign_in.code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": sign_in.verifier,
    }

    anonymous = await rp.http.post("/token", data=form | {"client_id": CLIENT_ID})
    stranger = await rp.http.post("/token", data=form, auth=("someone-else", CLIENT_SECRET))
    garbled = await rp.http.post("/token", data=form, headers={"Authorization": "Basic not*base64"})

    for response in (anonymous, stranger, garbled):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"


async def test_basic_credentials_are_form_decoded_as_rfc_6749_says(signing_key: RSAKey) -> None:
    client = {
        "client_id": "app one",
        "client_secret": "s3cr:t+&",
        "redirect_uris": ["http://127.0.0.1:9000/cb"],
    }
    async with provider(signing_key, clients=[client]) as rp:
        rp.client_id, rp.client_secret, rp.redirect_uri = "app one", "s3cr:t+&", "http://127.0.0.1:9000/cb"
        sign_in = await rp.sign_in()
        encoded = base64.b64encode(b"app+one:s3cr%3At%2B%26").decode()
        response = await rp.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": sign_in.code,
                "redirect_uri": rp.redirect_uri,
                "code_verifier": sign_in.verifier,
            },
            headers={"Authorization": f"Basic {encoded}"},
        )

    assert response.status_code == 200, response.text


async def test_a_wrong_code_verifier_is_invalid_grant(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()
    other = await rp.sign_in()

    # A well-formed verifier, but the one belonging to another sign-in.
    response = await rp.redeem(sign_in.code, other.verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_code_is_spent_by_a_failed_attempt_so_a_verifier_cannot_be_guessed(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()
    assert (await rp.redeem(sign_in.code, "x" * 43)).json()["error"] == "invalid_grant"

    response = await rp.redeem(sign_in.code, sign_in.verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_missing_code_verifier_is_invalid_request(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()

    response = await rp.redeem(sign_in.code, "")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_code_used_twice_is_invalid_grant_and_revokes_the_tokens_it_gave(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()
    first = await rp.tokens(sign_in)
    assert (await rp.userinfo(first["access_token"])).status_code == 200

    again = await rp.redeem(sign_in.code, sign_in.verifier)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert (await rp.userinfo(first["access_token"])).status_code == 401


async def test_a_code_expires_after_60_seconds(rp: RelyingParty) -> None:
    in_time = await rp.sign_in()
    late = await rp.sign_in()

    rp.clock.advance(59)
    assert (await rp.redeem(in_time.code, in_time.verifier)).status_code == 200
    rp.clock.advance(1)
    response = await rp.redeem(late.code, late.verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_an_unknown_code_is_invalid_grant(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()

    response = await rp.redeem(sign_in.code + "x", sign_in.verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_redirect_uri_other_than_the_authorization_requests_is_invalid_grant(
    rp: RelyingParty,
) -> None:
    sign_in = await rp.sign_in()
    rp.redirect_uri = "http://localhost:8000/auth/oidc/callback"  # registered too, but not the one asked with

    response = await rp.redeem(sign_in.code, sign_in.verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_code_issued_to_one_client_is_refused_to_another(signing_key: RSAKey) -> None:
    clients = [
        {"client_id": "mport-portal", "client_secret": CLIENT_SECRET, "redirect_uris": [rp_uri := _RP_URI]},
        {"client_id": "other", "client_secret": "other-secret", "redirect_uris": [rp_uri]},
    ]
    async with provider(signing_key, clients=clients) as rp:
        rp.redirect_uri = rp_uri
        sign_in = await rp.sign_in()
        rp.client_id, rp.client_secret = "other", "other-secret"
        response = await rp.redeem(sign_in.code, sign_in.verifier)
        assert response.json()["error"] == "invalid_grant"
        rp.client_id, rp.client_secret = "mport-portal", CLIENT_SECRET
        assert (await rp.redeem(sign_in.code, sign_in.verifier)).status_code == 200


_RP_URI = "http://127.0.0.1:8000/auth/oidc/callback"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"grant_type": "refresh_token"}, "unsupported_grant_type"),
        ({"grant_type": ""}, "invalid_request"),
        ({"code": ""}, "invalid_request"),
        ({"redirect_uri": ""}, "invalid_request"),
    ],
)
async def test_malformed_token_requests_are_refused_with_their_error_code(
    rp: RelyingParty, change: dict[str, str], error: str
) -> None:
    sign_in = await rp.sign_in()

    change = dict(change)
    code = change.pop("code", sign_in.code)
    response = await rp.redeem(code, sign_in.verifier, **change)

    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_a_token_request_must_be_form_encoded(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()

    response = await rp.http.post(
        "/token",
        json={"grant_type": "authorization_code", "code": sign_in.code},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_parameter_sent_twice_is_invalid_request(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()
    body = (
        f"grant_type=authorization_code&code={sign_in.code}&code={sign_in.code}"
        f"&redirect_uri={rp.redirect_uri}&code_verifier={sign_in.verifier}"
    )

    response = await rp.http.post(
        "/token",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_bad_or_missing_bearer_token_is_401_invalid_token(rp: RelyingParty) -> None:
    tokens = await rp.tokens(await rp.sign_in())

    wrong = await rp.userinfo(tokens["access_token"] + "x")
    missing = await rp.http.get("/userinfo")

    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert wrong.headers["www-authenticate"].startswith("Bearer ")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer ")
    assert "invalid_token" not in missing.headers["www-authenticate"]  # RFC 6750 §3.1: no credentials


async def test_an_access_token_expires_after_its_lifetime(rp: RelyingParty) -> None:
    tokens = await rp.tokens(await rp.sign_in())

    rp.clock.advance(599)
    assert (await rp.userinfo(tokens["access_token"])).status_code == 200
    rp.clock.advance(1)
    expired = await rp.userinfo(tokens["access_token"])

    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]


async def test_userinfo_answers_post_too(rp: RelyingParty) -> None:
    tokens = await rp.tokens(await rp.sign_in())

    response = await rp.http.post("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})

    assert response.status_code == 200
    assert response.json()["email"] == "kari.nordmann@demo.no"


async def test_lifetimes_follow_the_settings(signing_key: RSAKey) -> None:
    async with provider(signing_key, code_ttl_s=5, access_token_ttl_s=30, id_token_ttl_s=120) as rp:
        late = await rp.sign_in()
        sign_in = await rp.sign_in()
        tokens = await rp.tokens(sign_in)
        claims = await rp.verify_id_token(tokens["id_token"], nonce=sign_in.nonce)
        assert tokens["expires_in"] == 30
        assert claims["exp"] - claims["iat"] == 120
        rp.clock.advance(5)
        assert (await rp.redeem(late.code, late.verifier)).json()["error"] == "invalid_grant"
        rp.clock.advance(25)
        assert (await rp.userinfo(tokens["access_token"])).status_code == 401
