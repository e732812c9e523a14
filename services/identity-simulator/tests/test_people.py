"""Whom the provider knows: typed addresses (unverified by default) and a changed e-mail that keeps
the person's `sub`."""

from __future__ import annotations

from typing import Any

from identity_simulator.directory import derive_subject
from identity_simulator.settings import DEFAULT_SUBJECT_KEY
from joserfc.jwk import RSAKey

from .conftest import RelyingParty, provider


async def _userinfo(rp: RelyingParty, **sign_in: Any) -> dict[str, Any]:
    tokens = await rp.tokens(await rp.sign_in(**sign_in))
    response = await rp.userinfo(tokens["access_token"])
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()
    return info


async def test_a_typed_address_is_unverified_by_default(rp: RelyingParty) -> None:
    info = await _userinfo(rp, email="Ola.Hansen@Example.no ")

    assert info["email"] == "ola.hansen@example.no"
    assert info["email_verified"] is False


async def test_the_setting_makes_a_typed_address_verified(signing_key: RSAKey) -> None:
    async with provider(signing_key, typed_email_verified=True) as rp:
        info = await _userinfo(rp, email="ola.hansen@example.no")

    assert info["email_verified"] is True


async def test_the_sign_in_page_says_whether_a_typed_address_will_be_verified(signing_key: RSAKey) -> None:
    async with provider(signing_key) as rp:
        _, unverified = await rp.open_sign_in_page()
    async with provider(signing_key, typed_email_verified=True) as rp:
        _, verified = await rp.open_sign_in_page()

    assert "email_verified: false" in unverified.text
    assert "email_verified: true" in verified.text


async def test_the_same_typed_address_is_the_same_account_each_time(rp: RelyingParty) -> None:
    first = await _userinfo(rp, email="ola.hansen@example.no")
    second = await _userinfo(rp, email="OLA.HANSEN@example.no")

    assert first["sub"] == second["sub"]


async def test_typing_a_listed_persons_address_gives_another_account_unverified(rp: RelyingParty) -> None:
    kari = await _userinfo(rp, person="Kari Nordmann")
    typed = await _userinfo(rp, email="kari.nordmann@demo.no")

    assert typed["email"] == kari["email"]
    assert typed["sub"] != kari["sub"]
    assert typed["email_verified"] is False


async def test_a_changed_email_keeps_the_persons_sub(rp: RelyingParty) -> None:
    before = await _userinfo(rp, person="Kari Nordmann")

    response = await rp.http.put(
        f"/simulator/people/{before['sub']}", json={"email": "kari.ny@demo.no", "name": "Kari Ny"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == before["sub"]
    _, page = await rp.open_sign_in_page()
    assert "kari.ny@demo.no" in page.text
    after = await _userinfo(rp, person="Kari Ny")

    assert after["sub"] == before["sub"]
    assert after["email"] == "kari.ny@demo.no"
    assert after["email_verified"] is True


async def test_someone_typing_a_persons_old_address_does_not_get_their_sub(rp: RelyingParty) -> None:
    kari = await _userinfo(rp, person="Kari Nordmann")
    await rp.http.put(f"/simulator/people/{kari['sub']}", json={"email": "kari.ny@demo.no"})

    typed = await _userinfo(rp, email="kari.nordmann@demo.no")

    assert typed["sub"] != kari["sub"]


async def test_a_person_can_be_made_unverified(rp: RelyingParty) -> None:
    sub = (await _userinfo(rp, person="Siri Dahl"))["sub"]

    await rp.http.put(f"/simulator/people/{sub}", json={"email_verified": False})

    info = await _userinfo(rp, person="Siri Dahl")
    assert info["email_verified"] is False
    assert info["email"] == "siri.dahl@fjordlogistikk.no"


async def test_people_changes_are_checked(rp: RelyingParty) -> None:
    people = (await rp.http.get("/simulator/people")).json()
    kari, hakon = people[0], people[1]

    unknown = await rp.http.put("/simulator/people/nobody", json={"email": "x@demo.no"})
    taken = await rp.http.put(f"/simulator/people/{kari['sub']}", json={"email": hakon["email"]})
    misspelt = await rp.http.put(f"/simulator/people/{kari['sub']}", json={"mail": "x@demo.no"})
    not_an_address = await rp.http.put(f"/simulator/people/{kari['sub']}", json={"email": "nope"})

    assert unknown.status_code == 404
    assert taken.status_code == 409
    assert misspelt.status_code == 422
    assert not_an_address.status_code == 422
    assert (await rp.http.get("/simulator/people")).json() == people  # nothing changed


async def test_the_people_list_names_each_persons_sub(rp: RelyingParty) -> None:
    info = await _userinfo(rp, person="Per Fjell")

    people = (await rp.http.get("/simulator/people")).json()

    per = next(p for p in people if p["email"] == "admin@fjordlogistikk.no")
    assert per == {
        "sub": info["sub"],
        "name": "Per Fjell",
        "email": "admin@fjordlogistikk.no",
        "email_verified": True,
        "typed": False,
    }


async def test_a_sub_is_an_hmac_of_the_first_email_and_never_the_email(rp: RelyingParty) -> None:
    info = await _userinfo(rp, person="Ingrid Berg")

    assert info["sub"] == derive_subject(DEFAULT_SUBJECT_KEY, kind="person", email="admin@demo.no")
    assert "admin" not in info["sub"]
    assert derive_subject("another key", kind="person", email="admin@demo.no") != info["sub"]


async def test_people_configured_with_a_sub_keep_it_under_a_new_email(signing_key: RSAKey) -> None:
    # The setting way of trying a changed address: the old sub with the new e-mail.
    old_sub = derive_subject(DEFAULT_SUBJECT_KEY, kind="person", email="kari.nordmann@demo.no")
    people = [{"name": "Kari Nordmann", "email": "kari.gift@demo.no", "sub": old_sub}]
    async with provider(signing_key, people=people) as rp:
        info = await _userinfo(rp, person="Kari Nordmann")

    assert info == {
        "sub": old_sub,
        "email": "kari.gift@demo.no",
        "email_verified": True,
        "name": "Kari Nordmann",
        "preferred_username": "kari.gift@demo.no",
    }
