"""An employee's orders a page at a time: newest first, by keyset on (created_at, id), with a signed
cursor that names where the next page starts and for whom."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from portal_api.orders.domain import Position
from portal_api.orders.service import PlacedOrder, orders_of
from portal_api.unit_of_work import UnitOfWork

__all__ = ["BadCursor", "OrderCursors", "OrderPage", "Position", "order_page"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# Longer than any cursor this module makes (about 90 characters); more is not ours.
MAX_CURSOR_LENGTH = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class BadCursor(ValueError):
    """Not a cursor this portal made for this employee (tampered, another employee's, or made
    with another SESSION_SECRET)."""


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[PlacedOrder]
    next_cursor: str | None  # None on the last page


class OrderCursors:
    """Cursors signed (itsdangerous, HMAC) with a key per employee: one employee's cursor is refused
    for another instead of being read, and a changed cursor is refused instead of being guessed at.
    The query is limited to the signed-in employee anyway; the signature makes a bad cursor a clear
    400 rather than a page from somewhere odd."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="portal-api.orders-cursor")

    def dump(self, employee_id: uuid.UUID, position: Position) -> str:
        since_epoch = (position.created_at - _EPOCH) // _MICROSECOND  # exact, unlike a float
        return self._serializer.dumps([since_epoch, position.order_id.hex], salt=str(employee_id))

    def load(self, employee_id: uuid.UUID, cursor: str) -> Position:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise BadCursor("too long")
        try:
            raw = self._serializer.loads(cursor, salt=str(employee_id))
            since_epoch, order_hex = raw
            return Position(_EPOCH + since_epoch * _MICROSECOND, uuid.UUID(hex=order_hex))
        except (BadData, TypeError, ValueError, OverflowError) as error:
            raise BadCursor(str(error)) from None


async def order_page(
    uow: UnitOfWork,
    *,
    employee_id: uuid.UUID,
    cursors: OrderCursors,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> OrderPage:
    """One page of the employee's orders, newest first; BadCursor for a cursor not theirs.

    The order is total ((created_at, id), both descending), so pages neither repeat nor skip an
    order, and an order placed meanwhile shows on the first page, not in the middle of a later one."""
    after = cursors.load(employee_id, cursor) if cursor is not None else None
    rows = await orders_of(uow, employee_id, after=after, limit=limit + 1)
    if len(rows) <= limit:
        return OrderPage(rows, None)
    last = rows[limit - 1].order
    return OrderPage(rows[:limit], cursors.dump(employee_id, Position(last.created_at, last.id)))
