"""Settings from the environment, the signing key file, logout, and the process as `make run` starts it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import stat
import sys
from pathlib import Path

import httpx
import pytest
from identity_simulator import IdentitySimSettings
from identity_simulator.keys import UnusableKeyFile, load_signing_key
from joserfc.jwk import RSAKey
from pydantic import ValidationError

from .conftest import RelyingParty, query_of


def test_the_defaults_are_the_local_provider_of_design_12(clean_env: pytest.MonkeyPatch) -> None:
    settings = IdentitySimSettings()

    assert (settings.host, settings.port, settings.issuer) == ("127.0.0.1", 8083, "http://127.0.0.1:8083")
    [client] = settings.clients
    assert (client.client_id, client.client_secret) == ("mport-portal", "local-dev-secret")
    assert client.redirect_uris == (
        "http://127.0.0.1:8000/auth/oidc/callback",
        "http://localhost:8000/auth/oidc/callback",
    )
    assert [p.email for p in settings.people] == [
        "kari.nordmann@demo.no",
        "hakon.hafell@demo.no",
        "admin@demo.no",
        "admin@fjordlogistikk.no",
        "siri.dahl@fjordlogistikk.no",
    ]
    assert all(p.email_verified for p in settings.people)
    assert (settings.code_ttl_s, settings.access_token_ttl_s, settings.id_token_ttl_s) == (60, 600, 600)
    assert settings.email_in_id_token is False
    assert settings.typed_email_verified is False
    assert settings.key_file is None


def test_clients_and_people_come_from_json_in_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(
        "IDENTITY_SIM_CLIENTS",
        json.dumps(
            [
                {"client_id": "a", "client_secret": "sa", "redirect_uris": ["http://127.0.0.1:1/cb"]},
                {"client_id": "b", "client_secret": "sb", "redirect_uris": ["https://b.example/cb"]},
            ]
        ),
    )
    clean_env.setenv("IDENTITY_SIM_PEOPLE", json.dumps([{"name": "Ola", "email": "ola@x.no"}]))
    clean_env.setenv("IDENTITY_SIM_EMAIL_IN_ID_TOKEN", "true")
    clean_env.setenv("IDENTITY_SIM_TYPED_EMAIL_VERIFIED", "true")
    clean_env.setenv("IDENTITY_SIM_ISSUER", "http://idp.local:8083/")

    settings = IdentitySimSettings()

    assert [c.client_id for c in settings.clients] == ["a", "b"]
    assert [p.name for p in settings.people] == ["Ola"]
    assert settings.email_in_id_token
    assert settings.typed_email_verified
    assert settings.issuer == "http://idp.local:8083"


@pytest.mark.parametrize(
    "bad",
    [
        {"issuer": "idp.local"},
        {"issuer": "http://idp.local/?tenant=x"},
        {"clients": []},
        {"clients": [{"client_id": "a", "client_secret": "s", "redirect_uris": ["/relative"]}]},
        {"clients": [{"client_id": "a", "client_secret": "s", "redirect_uris": ["http://x/cb#frag"]}]},
        {"clients": [{"client_id": "a", "client_secret": "s", "redirect_uris": []}]},
        {
            "clients": [
                {"client_id": "a", "client_secret": "s", "redirect_uris": ["http://x/cb"]},
                {"client_id": "a", "client_secret": "t", "redirect_uris": ["http://y/cb"]},
            ]
        },
        {"people": [{"name": "A", "email": "a@x.no"}, {"name": "B", "email": "A@x.no"}]},
        {"people": [{"name": "A", "email": "no-at-sign"}]},
        {"code_ttl_s": 0},
    ],
)
def test_bad_settings_are_refused_at_start(clean_env: pytest.MonkeyPatch, bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        IdentitySimSettings(**bad)  # type: ignore[arg-type]


def test_a_key_file_that_does_not_exist_is_made_private_and_used_again(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "identity-simulator.pem"

    first = load_signing_key(path)
    second = load_signing_key(path)

    assert first.kid == second.kid
    assert first.as_dict(private=False) == second.as_dict(private=False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_a_jwk_key_file_is_read_too(tmp_path: Path, signing_key: RSAKey) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(signing_key.as_dict(private=True)))

    assert load_signing_key(path).kid == signing_key.kid


def test_a_public_or_garbled_key_file_is_refused(tmp_path: Path, signing_key: RSAKey) -> None:
    public = tmp_path / "public.pem"
    public.write_bytes(signing_key.as_pem(private=False))
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("not a key")

    with pytest.raises(UnusableKeyFile):
        load_signing_key(public)
    with pytest.raises(UnusableKeyFile):
        load_signing_key(garbled)


async def test_logout_goes_back_to_a_registered_address_with_the_state(rp: RelyingParty) -> None:
    tokens = await rp.tokens(await rp.sign_in())

    by_client = await rp.http.get(
        "/logout",
        params={
            "post_logout_redirect_uri": "http://127.0.0.1:8000/logg-inn",
            "client_id": "mport-portal",
            "state": "s1",
        },
    )
    by_hint = await rp.http.get(
        "/logout",
        params={
            "post_logout_redirect_uri": "http://localhost:8000/logg-inn",
            "id_token_hint": tokens["id_token"],
            "state": "s2",
        },
    )

    assert by_client.status_code == 303
    assert by_client.headers["location"] == "http://127.0.0.1:8000/logg-inn?state=s1"
    assert by_hint.status_code == 303
    assert query_of(by_hint.headers["location"]) == {"state": "s2"}


async def test_logout_to_an_unregistered_address_shows_a_page_and_does_not_redirect(rp: RelyingParty) -> None:
    unregistered = await rp.http.get(
        "/logout",
        params={"post_logout_redirect_uri": "https://attacker.example/", "client_id": "mport-portal"},
    )
    forged_hint = await rp.http.get(
        "/logout",
        params={"post_logout_redirect_uri": "http://127.0.0.1:8000/logg-inn", "id_token_hint": "a.b.c"},
    )
    plain = await rp.http.get("/logout")

    assert unregistered.status_code == 400
    assert "location" not in unregistered.headers
    assert forged_hint.status_code == 400
    assert "location" not in forged_hint.headers
    assert plain.status_code == 200
    assert "logget ut" in plain.text


def _free_port() -> int:
    """A free port below Linux's range for outgoing connections' ports (from 32768): one from
    that range, as binding port 0 gives, can be taken by an outgoing connection before the
    simulator binds it (mport_shared.devstack.free_port does the same for the other services)."""
    for _ in range(100):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", secrets.choice(range(10_000, 32_768))))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("found no free port")


async def test_python_m_identity_simulator_serves_discovery_on_its_port(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDENTITY_SIM_")} | {
        "IDENTITY_SIM_PORT": str(port),
        "IDENTITY_SIM_ISSUER": f"http://127.0.0.1:{port}",
        "IDENTITY_SIM_KEY_FILE": str(tmp_path / "key.pem"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "identity_simulator",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(200):
                try:
                    response = await http.get("/.well-known/openid-configuration")
                    break
                except httpx.TransportError:
                    if process.returncode is not None:
                        raise
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the simulator did not answer")
            assert response.json()["issuer"] == f"http://127.0.0.1:{port}"
            assert (await http.get("/healthz")).json() == {"status": "ok"}
    finally:
        process.terminate()
        output, _ = await process.communicate()
    assert (tmp_path / "key.pem").exists()
    assert b"identity_simulator_starting" in output
    assert b"local-dev-secret" not in output
