"""The authorization-code flow with PKCE as a standard client runs it, from discovery to UserInfo."""

from __future__ import annotations

import pytest
import structlog.testing
from identity_simulator.keys import new_signing_key
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, RSAKey

from .conftest import CLIENT_ID, CLIENT_SECRET, ISSUER, RelyingParty, parse_forms, provider

DEMO_PEOPLE = {
    "Kari Nordmann": "kari.nordmann@demo.no",
    "Håkon Hafell": "hakon.hafell@demo.no",
    "Ingrid Berg": "admin@demo.no",
    "Per Fjell": "admin@fjordlogistikk.no",
    "Siri Dahl": "siri.dahl@fjordlogistikk.no",
}


async def test_discovery_names_the_issuer_and_every_endpoint_and_capability(rp: RelyingParty) -> None:
    document = await rp.discovery()

    assert document["issuer"] == ISSUER
    assert document["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert document["token_endpoint"] == f"{ISSUER}/token"
    assert document["userinfo_endpoint"] == f"{ISSUER}/userinfo"
    assert document["jwks_uri"] == f"{ISSUER}/jwks"
    assert document["end_session_endpoint"] == f"{ISSUER}/logout"
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["public"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"openid", "profile", "email"} <= set(document["scopes_supported"])
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["grant_types_supported"] == ["authorization_code"]
    assert {"sub", "email", "email_verified", "name", "nonce"} <= set(document["claims_supported"])


async def test_a_full_code_flow_signs_kari_in_with_a_verified_id_token_and_her_userinfo(
    rp: RelyingParty,
) -> None:
    sign_in = await rp.sign_in(person="Kari Nordmann")
    assert sign_in.callback["iss"] == ISSUER  # RFC 9207

    response = await rp.redeem(sign_in.code, sign_in.verifier)  # client_secret_basic
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 600
    assert tokens["scope"] == "openid profile email"

    claims = await rp.verify_id_token(tokens["id_token"], nonce=sign_in.nonce)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == sign_in.nonce
    assert claims["exp"] == claims["iat"] + 600
    assert claims["auth_time"] <= claims["iat"]
    jwks = (await rp.http.get("/jwks")).json()
    header = jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks)).header
    assert header["alg"] == "RS256"
    assert header["kid"] == jwks["keys"][0]["kid"]

    userinfo = await rp.userinfo(tokens["access_token"])
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json() == {
        "sub": claims["sub"],
        "email": "kari.nordmann@demo.no",
        "email_verified": True,
        "name": "Kari Nordmann",
        "preferred_username": "kari.nordmann@demo.no",
    }


async def test_the_id_token_is_signed_by_the_key_in_the_jwks_and_no_other(
    rp: RelyingParty, signing_key: RSAKey
) -> None:
    tokens = await rp.tokens(await rp.sign_in())
    jwks = (await rp.http.get("/jwks")).json()

    assert [k["kid"] for k in jwks["keys"]] == [signing_key.kid]
    assert all("d" not in k and "p" not in k for k in jwks["keys"])  # the public half only
    assert jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"]).claims
    # Another key under the same kid: the signature does not verify.
    impostor = RSAKey.import_key(
        new_signing_key().as_dict(private=False) | {"kid": signing_key.kid}  # type: ignore[arg-type]
    )
    with pytest.raises(BadSignatureError):
        jwt.decode(tokens["id_token"], KeySet([impostor]), algorithms=["RS256"])


async def test_client_secret_post_authenticates_the_client_too(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()

    response = await rp.redeem(sign_in.code, sign_in.verifier, basic=False)

    assert response.status_code == 200, response.text
    await rp.verify_id_token(response.json()["id_token"], nonce=sign_in.nonce)


async def test_the_id_token_names_the_person_by_sub_only_by_default(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in()
    claims = await rp.verify_id_token((await rp.tokens(sign_in))["id_token"], nonce=sign_in.nonce)

    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce"}
    assert "@" not in claims["sub"]


async def test_the_setting_puts_email_and_name_in_the_id_token(signing_key: RSAKey) -> None:
    async with provider(signing_key, email_in_id_token=True) as rp:
        sign_in = await rp.sign_in(person="Håkon Hafell")
        claims = await rp.verify_id_token((await rp.tokens(sign_in))["id_token"], nonce=sign_in.nonce)

    assert claims["email"] == "hakon.hafell@demo.no"
    assert claims["email_verified"] is True
    assert claims["name"] == "Håkon Hafell"


async def test_userinfo_gives_only_what_the_granted_scopes_allow(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in(scope="openid email")
    tokens = await rp.tokens(sign_in)

    assert tokens["scope"] == "openid email"
    info = (await rp.userinfo(tokens["access_token"])).json()
    assert info == {"sub": info["sub"], "email": "kari.nordmann@demo.no", "email_verified": True}


async def test_unknown_scope_values_are_left_out_of_what_is_granted(rp: RelyingParty) -> None:
    tokens = await rp.tokens(await rp.sign_in(scope="openid offline_access User.Read email"))

    assert tokens["scope"] == "openid email"


async def test_the_sign_in_page_lists_the_demo_people_and_the_other_address_form(rp: RelyingParty) -> None:
    _, page = await rp.open_sign_in_page()

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="nb">' in page.text
    assert "ingen passord" in page.text.lower()
    parsed = parse_forms(page.text)
    assert parsed.headings[0] == "Logg inn"
    assert "Annen e-postadresse" in parsed.headings
    buttons = [text for form in parsed.forms for _, _, text in form.buttons]
    for name, email in DEMO_PEOPLE.items():
        assert f"{name} {email}" in buttons
    assert any(i.get("type") == "email" and i.get("name") == "email" for f in parsed.forms for i in f.inputs)
    assert page.headers["x-frame-options"] == "DENY"


async def test_each_demo_person_signs_in_under_a_sub_of_their_own(rp: RelyingParty) -> None:
    subjects: dict[str, str] = {}
    for name, email in DEMO_PEOPLE.items():
        tokens = await rp.tokens(await rp.sign_in(person=name))
        info = (await rp.userinfo(tokens["access_token"])).json()
        assert info["email"] == email
        assert info["email_verified"] is True
        subjects[name] = info["sub"]

    assert len(set(subjects.values())) == len(DEMO_PEOPLE)


async def test_the_same_person_gets_the_same_sub_from_every_provider_with_the_same_settings(
    signing_key: RSAKey,
) -> None:
    # A relying party binds accounts to (iss, sub): a restart of the simulator must not change it.
    subjects = []
    for _ in range(2):
        async with provider(signing_key) as rp:
            tokens = await rp.tokens(await rp.sign_in(person="Siri Dahl"))
            subjects.append((await rp.userinfo(tokens["access_token"])).json()["sub"])

    assert subjects[0] == subjects[1]


async def test_a_nonce_left_out_is_left_out_of_the_id_token(rp: RelyingParty) -> None:
    sign_in = await rp.sign_in(nonce=None)
    tokens = await rp.tokens(sign_in)

    claims = jwt.decode(tokens["id_token"], KeySet.import_key_set((await rp.http.get("/jwks")).json())).claims
    assert "nonce" not in claims


async def test_an_issuer_with_a_path_serves_the_whole_flow_under_that_path(signing_key: RSAKey) -> None:
    issuer = "http://127.0.0.1:8083/tenant/v2.0"
    async with provider(signing_key, issuer=issuer + "/") as rp:
        document = await rp.discovery()
        assert document["issuer"] == issuer  # without the trailing slash, as `iss` will be
        assert document["token_endpoint"] == f"{issuer}/token"
        sign_in = await rp.sign_in()
        assert sign_in.callback["iss"] == issuer
        claims = await rp.verify_id_token((await rp.tokens(sign_in))["id_token"], nonce=sign_in.nonce)
        assert claims["iss"] == issuer
        assert (await rp.http.get("/.well-known/openid-configuration")).status_code == 404
        assert (await rp.http.get("/healthz")).json() == {"status": "ok"}


async def test_no_code_token_secret_or_verifier_reaches_a_log_line(rp: RelyingParty) -> None:
    with structlog.testing.capture_logs() as lines:
        sign_in = await rp.sign_in()
        tokens = await rp.tokens(sign_in)
        await rp.userinfo(tokens["access_token"])
        await rp.redeem(sign_in.code, sign_in.verifier)  # reused: refused, and logged
        await rp.redeem(sign_in.code, sign_in.verifier, secret="wrong-secret")

    assert {line["event"] for line in lines} >= {"signed_in", "tokens_issued", "token_refused"}
    logged = repr(lines)
    for secret in (
        sign_in.code,
        sign_in.verifier,
        tokens["access_token"],
        tokens["id_token"],
        CLIENT_SECRET,
        "wrong-secret",
    ):
        assert secret not in logged
