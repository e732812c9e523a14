"""Inbox: the ids of messages a consumer has handled, written in the handler's own transaction."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from mport_shared.db import insert_if_absent


async def claim_message(session: AsyncSession, inbox: Table, *, consumer: str, message_id: str) -> bool:
    """Record the message as handled; False means it was handled before and must have no effect."""
    return await insert_if_absent(
        session, inbox, {"consumer": consumer, "message_id": message_id}, keys=["consumer", "message_id"]
    )
