"""The people the provider knows, each under a stable opaque `sub` that outlives a change of e-mail."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, replace

from identity_simulator.settings import PersonConfig


class UnknownAccount(Exception):
    """No account has this `sub`."""


class EmailTaken(Exception):
    """Another listed person already has this e-mail address."""


@dataclass(frozen=True, slots=True)
class Account:
    sub: str
    name: str
    email: str
    email_verified: bool
    # Made from an address typed on the sign-in page, not one of the listed people.
    typed: bool = False


def derive_subject(key: str, *, kind: str, email: str) -> str:
    """An opaque, stable subject: HMAC-SHA256 of the first e-mail under a fixed key, base64url.

    `kind` keeps the two namespaces apart: someone who types the address a listed person had
    before it changed gets an account of their own, never that person's `sub`."""
    message = f"{kind}:{email.strip().lower()}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normalise_email(value: str) -> str | None:
    """The typed address, trimmed and lower-cased, or None when it is no e-mail address."""
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or not domain or "@" in domain or len(email) > 254:
        return None
    if any(ch.isspace() or ch in '<>"' for ch in email) or domain.startswith(".") or domain.endswith("."):
        return None
    return email


class Directory:
    """The listed people, in their configured order, and the accounts made from typed addresses."""

    def __init__(
        self, people: Iterable[PersonConfig], *, subject_key: str, typed_email_verified: bool
    ) -> None:
        self._key = subject_key
        self._typed_email_verified = typed_email_verified
        self._accounts: dict[str, Account] = {}
        for person in people:
            sub = person.sub or derive_subject(subject_key, kind="person", email=person.email)
            if sub in self._accounts:
                raise ValueError(f"two people would share the sub {sub!r}")
            self._accounts[sub] = Account(
                sub=sub, name=person.name, email=person.email.strip(), email_verified=person.email_verified
            )

    def listed(self) -> list[Account]:
        """The people the sign-in page offers."""
        return [a for a in self._accounts.values() if not a.typed]

    def all(self) -> list[Account]:
        return list(self._accounts.values())

    def get(self, sub: str) -> Account | None:
        return self._accounts.get(sub)

    def typed(self, email: str) -> Account:
        """The account of someone who typed this (normalised) address: the same one each time."""
        sub = derive_subject(self._key, kind="typed", email=email)
        account = self._accounts.get(sub)
        if account is None:
            account = Account(
                sub=sub,
                name=email.partition("@")[0],
                email=email,
                email_verified=self._typed_email_verified,
                typed=True,
            )
            self._accounts[sub] = account
        return account

    def change(
        self,
        sub: str,
        *,
        email: str | None = None,
        name: str | None = None,
        email_verified: bool | None = None,
    ) -> Account:
        """Change what an account says about its holder; its `sub` stays."""
        account = self._accounts.get(sub)
        if account is None:
            raise UnknownAccount(sub)
        if email is not None and not account.typed:
            taken = any(other.email.lower() == email.lower() and other.sub != sub for other in self.listed())
            if taken:
                raise EmailTaken(email)
        changed = replace(
            account,
            email=account.email if email is None else email,
            name=account.name if name is None else name,
            email_verified=account.email_verified if email_verified is None else email_verified,
        )
        self._accounts[sub] = changed
        return changed
