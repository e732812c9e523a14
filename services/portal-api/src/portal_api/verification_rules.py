"""Rules of phone verification shared by the verification use cases and the administrator's pages."""

from __future__ import annotations

from typing import Final

# Wrong one-time codes in a row, over all of an employee's codes, before only the administrator can
# unlock them (by setting employees.verification_failures back to 0). Issue 9 / OWASP ASVS V2.2.1.
MAX_CONSECUTIVE_VERIFICATION_FAILURES: Final = 100


def is_locked(verification_failures: int) -> bool:
    """Whether the employee may ask for no more codes until the administrator unlocks them."""
    return verification_failures >= MAX_CONSECUTIVE_VERIFICATION_FAILURES
