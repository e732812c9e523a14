"""The authorization endpoint's refusals (RFC 6749 §4.1.2.1) and the sign-in page's choices."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from joserfc.jwk import RSAKey

from .conftest import ISSUER, REDIRECT_URI, RelyingParty, SignIn, parse_forms, provider, query_of


async def test_an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(rp: RelyingParty) -> None:
    _, page = await rp.open_sign_in_page(redirect_uri="https://attacker.example/callback")

    assert page.status_code == 400
    assert "location" not in page.headers
    assert page.headers["content-type"].startswith("text/html")
    assert "https://attacker.example/callback" in page.text
    assert "ikke registrert" in page.text


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "unknown-client"},
        {"client_id": None},
        {"redirect_uri": None},
        {"redirect_uri": REDIRECT_URI + "/"},  # compared exactly: no prefix, no trailing slash
        {"redirect_uri": REDIRECT_URI + "?next=/x"},
    ],
)
async def test_an_unknown_client_or_a_redirect_uri_not_exactly_registered_is_shown_not_redirected(
    rp: RelyingParty, change: dict[str, str | None]
) -> None:
    _, page = await rp.open_sign_in_page(**change)

    assert page.status_code == 400
    assert "location" not in page.headers
    assert not parse_forms(page.text).forms  # no sign-in offered


async def test_a_client_id_sent_twice_is_shown_not_redirected(rp: RelyingParty) -> None:
    sign_in = SignIn(state="s", nonce="n", verifier="v" * 43)
    query = urlencode(rp.authorize_params(sign_in)) + "&client_id=mport-portal"

    page = await rp.http.get(f"/authorize?{query}")

    assert page.status_code == 400
    assert "location" not in page.headers


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"scope": "profile email"}, "invalid_request"),  # no openid
        ({"scope": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),  # PKCE is required
        ({"code_challenge_method": None}, "invalid_request"),  # "plain" by default, not accepted
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
        ({"request": "eyJ..."}, "request_not_supported"),
    ],
)
async def test_other_errors_go_back_to_the_redirect_uri_with_the_error_and_the_state(
    rp: RelyingParty, change: dict[str, str | None], error: str
) -> None:
    sign_in, response = await rp.open_sign_in_page(**change)

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query_of(location)
    assert params["error"] == error
    assert params["state"] == sign_in.state
    assert params["iss"] == ISSUER
    assert "code" not in params


async def test_a_parameter_sent_twice_goes_back_as_invalid_request(rp: RelyingParty) -> None:
    sign_in = SignIn(state="the-state", nonce="n", verifier="v" * 43)
    query = urlencode(rp.authorize_params(sign_in)) + "&scope=openid"

    response = await rp.http.get(f"/authorize?{query}")

    assert response.status_code == 303
    assert query_of(response.headers["location"])["error"] == "invalid_request"


async def test_authorize_takes_a_form_post_too(rp: RelyingParty) -> None:
    sign_in = SignIn(state="the-state", nonce="n", verifier="v" * 43)

    page = await rp.http.post("/authorize", data=rp.authorize_params(sign_in))

    assert page.status_code == 200
    assert "Kari Nordmann" in page.text


async def test_cancelling_goes_back_with_access_denied(rp: RelyingParty) -> None:
    sign_in, page = await rp.open_sign_in_page()
    form = next(f for f in parse_forms(page.text).forms if any(b[0] == "cancel" for b in f.buttons))

    response = await rp.http.post(form.action, data=form.fields | {"cancel": "1"})

    assert response.status_code == 303
    params = query_of(response.headers["location"])
    assert params["error"] == "access_denied"
    assert params["state"] == sign_in.state
    assert "code" not in params


async def test_a_sign_in_page_answers_once(rp: RelyingParty) -> None:
    _, page = await rp.open_sign_in_page()
    await rp.choose(page, person="Kari Nordmann")

    form = parse_forms(page.text).forms[0]
    again = await rp.http.post(form.action, data=form.fields | {"person": form.buttons[0][1]})

    assert again.status_code == 400
    assert "location" not in again.headers


async def test_a_sign_in_page_left_too_long_must_start_over(rp: RelyingParty) -> None:
    _, page = await rp.open_sign_in_page()
    rp.clock.advance(600)

    form = parse_forms(page.text).forms[0]
    response = await rp.http.post(form.action, data=form.fields | {"person": form.buttons[0][1]})

    assert response.status_code == 400
    assert "utløpt" in response.text


async def test_an_invalid_typed_address_shows_the_page_again_with_a_message(rp: RelyingParty) -> None:
    _, page = await rp.open_sign_in_page()
    form = next(f for f in parse_forms(page.text).forms if any(i.get("name") == "email" for i in f.inputs))

    response = await rp.http.post(form.action, data=form.fields | {"email": "not an address"})

    assert response.status_code == 400
    assert 'role="alert"' in response.text
    assert "Kari Nordmann" in response.text  # still the sign-in page, still usable
    assert (await rp.choose(response, person="Kari Nordmann")).startswith(REDIRECT_URI)


async def test_the_code_comes_back_on_a_redirect_uri_that_already_has_a_query(signing_key: RSAKey) -> None:
    uri = "http://127.0.0.1:8000/auth/oidc/callback?tenant=demo"
    client = {"client_id": "mport-portal", "client_secret": "local-dev-secret", "redirect_uris": [uri]}
    async with provider(signing_key, clients=[client]) as rp:
        rp.redirect_uri = uri
        sign_in = await rp.sign_in()
        assert sign_in.callback["tenant"] == "demo"
        assert (await rp.redeem(sign_in.code, sign_in.verifier)).status_code == 200
