"""The administrator's lists a page at a time: the employees by (name, id), the audit log newest
first by id; each with an opaque cursor signed for the administrator's company."""

from __future__ import annotations

import uuid
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from portal_api.admin.service import StaffPosition

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# Longer than any cursor made here (a name of up to 200 characters makes the longest); more is not ours.
MAX_CURSOR_LENGTH = 1000


class BadCursor(ValueError):
    """Not a cursor made here for this company (changed, another company's, another list's)."""


class AdminCursors:
    """Like orders.listing.OrderCursors: signed (itsdangerous, HMAC) with the company as salt, so
    one company's cursor is refused for another and a changed one is refused rather than read.
    The queries are scoped to the administrator's company anyway."""

    def __init__(self, secret: str) -> None:
        self._staff = URLSafeSerializer(secret, salt="portal-api.admin-staff-cursor")
        self._log = URLSafeSerializer(secret, salt="portal-api.admin-audit-cursor")

    def dump_staff(self, company_id: uuid.UUID, position: StaffPosition) -> str:
        return self._staff.dumps([position.name, position.employee_id.hex], salt=str(company_id))

    def load_staff(self, company_id: uuid.UUID, cursor: str) -> StaffPosition:
        name, employee_hex = self._load(self._staff, company_id, cursor)
        if not isinstance(name, str) or not isinstance(employee_hex, str):
            raise BadCursor("not a position")
        try:
            return StaffPosition(name, uuid.UUID(hex=employee_hex))
        except ValueError as error:
            raise BadCursor(str(error)) from None

    def dump_log(self, company_id: uuid.UUID, before_id: int) -> str:
        return self._log.dumps([before_id], salt=str(company_id))

    def load_log(self, company_id: uuid.UUID, cursor: str) -> int:
        (before_id,) = self._load(self._log, company_id, cursor, size=1)
        if not isinstance(before_id, int) or isinstance(before_id, bool):
            raise BadCursor("not an id")
        return before_id

    @staticmethod
    def _load(serializer: URLSafeSerializer, company_id: uuid.UUID, cursor: str, size: int = 2) -> list[Any]:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise BadCursor("too long")
        try:
            raw = serializer.loads(cursor, salt=str(company_id))
        except (BadData, TypeError, ValueError) as error:
            raise BadCursor(str(error)) from None
        if not isinstance(raw, list) or len(raw) != size:
            raise BadCursor("not a cursor")
        return raw
