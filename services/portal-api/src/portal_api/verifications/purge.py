"""The one-time code leaves the portal only in its VerificationRequested event, whose outbox row
holds it in clear until the relay has published it: once published (or expired unsent), the row
is deleted, so the code is in the portal's database only for the seconds it waits for the relay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from mport_shared.events import VerificationRequested
from mport_shared.logging import get_logger
from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_api.models import tables

log = get_logger(__name__)
PURGE_EVERY_S = 5.0
_MARGIN = 10_000


async def purge_relayed_codes(db: AsyncSession, *, now: datetime, after_id: int = 0) -> tuple[int, int]:
    """Delete the relayed (or expired) code rows with ids above `after_id`; the count, and the id
    the next round may start after: below the oldest code row still waiting, else the newest row.
    So a round reads a primary-key range, not the whole outbox (which keeps every sent event)."""
    outbox = tables.outbox
    is_code = outbox.c.routing_key == VerificationRequested.event_type
    result = await db.execute(
        delete(outbox).where(
            outbox.c.id > after_id,
            is_code,
            or_(outbox.c.sent_at.is_not(None), outbox.c.expires_at <= now),
        )
    )
    waiting = await db.scalar(select(func.min(outbox.c.id)).where(outbox.c.id > after_id, is_code))
    if waiting is not None:
        floor = int(waiting) - 1
    else:
        newest = await db.scalar(select(func.max(outbox.c.id)))
        # Less a margin: a row of a transaction still open when this one read may have a lower id.
        floor = max(after_id, int(newest) - _MARGIN) if newest is not None else after_id
    return int(getattr(result, "rowcount", 0) or 0), floor


async def purge_codes_forever(
    sessions: async_sessionmaker[AsyncSession],
    *,
    clock: Callable[[], datetime],
    every_s: float = PURGE_EVERY_S,
) -> None:
    """Run for the life of the process; several portal processes at once are harmless."""
    floor = 0
    while True:
        try:
            async with sessions.begin() as db:
                purged, floor = await purge_relayed_codes(db, now=clock(), after_id=floor)
            if purged:
                log.info("relayed one-time codes removed from the outbox", count=purged)
        except Exception:
            log.warning("could not remove relayed one-time codes from the outbox", exc_info=True)
        await asyncio.sleep(every_s)
