"""Why a sign-in with a work account stops."""

from __future__ import annotations


class SignInRefused(Exception):
    """The sign-in cannot go on; `reason` picks the message the employee sees (login.failed.<reason>)."""

    def __init__(self, reason: str, *, log_detail: str = "", **values: str) -> None:
        super().__init__(f"{reason}: {log_detail}" if log_detail else reason)
        self.reason = reason
        self.values = values
