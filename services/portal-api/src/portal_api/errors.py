"""Domain errors: what a use case refuses, each with a stable code. No HTTP here; the edge
(portal_api.problems) maps each code to a status and a problem `type` URI."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable codes: clients and logs rely on them, so a code is never renamed or reused."""

    NOT_SIGNED_IN = "auth.not-signed-in"
    SESSION_EXPIRED = "auth.session-expired"
    SELF_SERVICE_NOT_ACTIVATED = "self-service.not-activated"
    NO_SUBSCRIPTION = "order.no-subscription"
    UNKNOWN_PRODUCT = "order.unknown-product"
    INVALID_DETAILS = "order.invalid-details"
    INVALID_ICC = "order.invalid-icc"
    ALREADY_ACTIVE = "order.already-active"
    ALREADY_ORDERED = "order.already-ordered"
    NOT_ALLOWED_BY_POLICY = "order.not-allowed-by-policy"
    IDEMPOTENCY_KEY_REUSED = "order.idempotency-key-reused"
    ORDER_NOT_FOUND = "order.not-found"
    # Consent to a salary deduction (arbeidsmiljøloven § 14-15), and ending a service ("Avslutt").
    DEDUCTION_NOT_ACCEPTED = "order.deduction-not-accepted"
    DEDUCTION_CHANGED = "order.deduction-changed"
    SERVICE_NOT_ACTIVE = "order.service-not-active"
    SERVICE_ALREADY_ENDING = "order.service-already-ending"
    # Phone verification by SMS one-time code (portal_api.verifications).
    VERIFICATION_NOT_FOUND = "verification.not-found"
    VERIFICATION_ALREADY_CONFIRMED = "verification.already-confirmed"
    VERIFICATION_BUSY = "verification.busy"
    VERIFICATION_WRONG_CODE = "verification.wrong-code"
    VERIFICATION_TOO_MANY_TRIES = "verification.too-many-tries"
    VERIFICATION_CODE_EXPIRED = "verification.code-expired"
    VERIFICATION_CODE_REPLACED = "verification.code-replaced"
    VERIFICATION_CODE_DEAD = "verification.code-dead"
    VERIFICATION_CODE_USED = "verification.code-used"
    VERIFICATION_NUMBER_CHANGED = "verification.number-changed"
    VERIFICATION_TOO_MANY_CODES = "verification.too-many-codes"
    VERIFICATION_LOCKED = "verification.locked"
    SMS_COUNTRY_NOT_ALLOWED = "verification.country-not-allowed"
    SMS_BUDGET_SPENT = "verification.sms-budget-spent"
    NOT_AN_ADMINISTRATOR = "admin.not-an-administrator"
    EMPLOYEE_NOT_FOUND = "admin.employee-not-found"
    INVALID_MSISDN = "admin.invalid-msisdn"
    MSISDN_TAKEN = "admin.msisdn-taken"
    EMPLOYEE_HAS_NO_SUBSCRIPTION = "admin.no-subscription"
    OPEN_ORDERS_ON_NUMBER = "admin.open-orders-on-number"
    # Salary deductions (portal_api.payroll).
    INVALID_PERIOD = "payroll.invalid-period"
    PAYROLL_UNAVAILABLE = "payroll.unavailable"
    PAYROLL_REFUSED = "payroll.refused"
    INVALID_POLICY = "admin.invalid-policy"


class DomainError(Exception):
    """A use case's refusal: a stable `code` to act on and a `detail` in words for people."""

    def __init__(self, code: ErrorCode, detail: str, **extensions: object) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        # Members the problem document carries besides detail (e.g. tries_left, retry_after_s:
        # the latter also becomes the Retry-After header). Never a secret.
        self.extensions = extensions

    @property
    def retry_after_s(self) -> int | None:
        value = self.extensions.get("retry_after_s")
        return value if isinstance(value, int) else None


class NotSignedIn(DomainError):
    """No employee is signed in (or the one the session names is not on file): the API answers
    401, a page sends the visitor to the sign-in page."""

    def __init__(self, detail: str = "Sign in first (Bruk jobbkonto).") -> None:
        super().__init__(ErrorCode.NOT_SIGNED_IN, detail)
