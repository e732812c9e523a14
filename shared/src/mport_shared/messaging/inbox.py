"""Inbox: the ids of messages a consumer has handled, written in the handler's own transaction."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mport_shared.db import insert_if_absent


async def claim_message(session: AsyncSession, inbox: Table, *, consumer: str, message_id: str) -> bool:
    """Record the message as handled; False means it was handled before and must have no effect."""
    return await insert_if_absent(
        session, inbox, {"consumer": consumer, "message_id": message_id}, keys=["consumer", "message_id"]
    )


async def claim_messages(
    session: AsyncSession, inbox: Table, *, consumer: str, message_ids: Iterable[str]
) -> set[str]:
    """Record several messages as handled with one statement; returns the ids not handled before.

    The ids go in sorted, so two transactions claiming overlapping sets wait for each other in
    the same order and never deadlock."""
    ids = sorted(set(message_ids))
    if not ids:
        return set()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    claimed = await session.scalars(
        insert(inbox)
        .values([{"consumer": consumer, "message_id": i} for i in ids])
        .on_conflict_do_nothing(index_elements=["consumer", "message_id"])
        .returning(inbox.c.message_id)
    )
    return set(claimed)
