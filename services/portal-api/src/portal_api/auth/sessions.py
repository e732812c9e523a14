"""Signed-in sessions kept in the portal's database, so that they end: Logg ut ends every copy of
the cookie, a session ends after a while without requests and a fixed time after sign-in, and an
administrator's change to an employee can end all of theirs.

The cookie carries a random token (256 bits); the table holds only its SHA-256, so a copy of the
table gives nobody a live session. An unkeyed hash is enough: the token is random and long, so
there is nothing to guess.

A request's session is checked by its unit of work (SessionGuard), the first time it reads the
signed-in employee or their orders: joined into the query that loads the employee (placing an
order, the pages, /api/v1/me: no statement of its own), else one primary-key read. Its
`last_seen_at` moves at most once a minute, after the request (deps.get_uow), so a request costs
no write either."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from mport_shared.logging import get_logger
from sqlalchemy import Select, and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_api.errors import ErrorCode, NotSignedIn
from portal_api.models import Employee, WebSession

log = get_logger(__name__)

Clock = Callable[[], datetime]

# How stale `last_seen_at` may get before a request moves it on: a write at most this often per
# session, at the price of an idle timeout that may come this much early.
TOUCH_EVERY = timedelta(minutes=1)
# How often each portal process removes the records of sessions that ended unseen.
PURGE_EVERY_S = 600.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class SessionEnd(StrEnum):
    """Why a session cookie no longer signs anyone in."""

    # Signed out (from this copy of the cookie or another), ended by an administrator's change, or
    # never a session of this portal.
    ENDED = "ended"
    IDLE = "idle"  # no request for longer than the idle timeout
    MAX_AGE = "max_age"  # signed in longer ago than the absolute lifetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionPolicy:
    """How long a session lives: `idle_timeout` after its last request, `max_age` after sign-in."""

    idle_timeout: timedelta
    max_age: timedelta

    @property
    def touch_every(self) -> timedelta:
        # A short idle timeout (a test's, say) is still honoured to within a tenth of itself.
        return min(TOUCH_EVERY, self.idle_timeout / 10)

    def ended(self, *, now: datetime, created_at: datetime, last_seen_at: datetime) -> SessionEnd | None:
        """Why the session is over at `now`, or None while it is alive."""
        if now - created_at >= self.max_age:
            return SessionEnd.MAX_AGE
        if now - last_seen_at >= self.idle_timeout:
            return SessionEnd.IDLE
        return None

    def needs_touch(self, *, now: datetime, last_seen_at: datetime) -> bool:
        return now - last_seen_at >= self.touch_every

    def expired_before(self, now: datetime) -> tuple[datetime, datetime]:
        """(idle cut-off, age cut-off): a session last seen or created before these is over."""
        return now - self.idle_timeout, now - self.max_age


class SessionRefused(NotSignedIn):
    """The cookie names a session that is not on: ended (signed out, ended for the employee, or
    unknown: code auth.not-signed-in), or timed out (auth.session-expired). The API answers 401,
    a page sends the visitor to the sign-in page, which says why."""

    def __init__(self, why: SessionEnd, policy: SessionPolicy) -> None:
        super().__init__(_why_text(why, policy))
        if why is not SessionEnd.ENDED:
            self.code = ErrorCode.SESSION_EXPIRED
        self.why = why


def _why_text(why: SessionEnd, policy: SessionPolicy) -> str:
    again = "Sign in again (Bruk jobbkonto)."
    match why:
        case SessionEnd.IDLE:
            minutes = round(policy.idle_timeout.total_seconds() / 60)
            return f"This session ended after {minutes} minutes without activity. {again}"
        case SessionEnd.MAX_AGE:
            hours = policy.max_age.total_seconds() / 3600
            return f"This session ended: a sign-in lasts at most {hours:g} hours. {again}"
        case SessionEnd.ENDED:
            return f"This session has ended (signed out, or ended by the mPort administrator). {again}"


# Built once: the join condition, with the token hash as a parameter of each execution.
_TOKEN_HASH = "session_token_hash"  # noqa: S105 (a parameter name)
_SESSION_OF = and_(WebSession.employee_id == Employee.id, WebSession.token_hash == bindparam(_TOKEN_HASH))


def fold_session(query: Select[Employee]) -> Select[Employee, datetime, datetime]:
    """`query` joined with the session whose token hash is the parameter SessionGuard.params names
    (inner: no session, no row), adding the session's times; a module may build it once."""
    return query.add_columns(WebSession.created_at, WebSession.last_seen_at).join(WebSession, _SESSION_OF)


@dataclass(slots=True, kw_only=True)
class SessionGuard:
    """The session a request's cookie presents, to be checked once, the first time the request
    reads the signed-in employee (`fold` into that query, then `judge` its row) or their orders
    (`check`: one primary-key read). Refusal is SessionRefused."""

    employee_id: uuid.UUID
    token_hash: bytes
    policy: SessionPolicy
    now: datetime
    checked: bool = False
    # What the request should write when it is done (deps.get_uow): last_seen_at is old enough to
    # move on, or the session timed out and its record can go.
    touch_due: bool = False
    expired: bool = False

    def guards(self, employee_id: uuid.UUID) -> bool:
        """Whether reading this employee's things must check the session first."""
        return not self.checked and employee_id == self.employee_id

    def fold(self, query: Select[Employee]) -> Select[Employee, datetime, datetime]:
        """The query that loads the employee, joined with the session (inner: no session, no row);
        execute it with `params`."""
        return fold_session(query)

    @property
    def params(self) -> dict[str, bytes]:
        return {_TOKEN_HASH: self.token_hash}

    def judge(self, times: tuple[datetime, datetime] | None) -> None:
        """(created_at, last_seen_at) of the session as read, or None when there is none."""
        if times is None:
            raise SessionRefused(SessionEnd.ENDED, self.policy)
        created_at, last_seen_at = times
        if why := self.policy.ended(now=self.now, created_at=created_at, last_seen_at=last_seen_at):
            self.expired = True
            raise SessionRefused(why, self.policy)
        self.touch_due = self.policy.needs_touch(now=self.now, last_seen_at=last_seen_at)
        self.checked = True

    async def check(self, db: AsyncSession) -> None:
        """For a request that does not load the employee: one primary-key read."""
        row = (
            await db.execute(
                select(WebSession.employee_id, WebSession.created_at, WebSession.last_seen_at).where(
                    WebSession.token_hash == self.token_hash
                )
            )
        ).one_or_none()
        self.judge(None if row is None or row.employee_id != self.employee_id else (row[1], row[2]))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# ---- the table (each takes the caller's transaction; the caller commits) ----


async def open_session(db: AsyncSession, *, employee_id: uuid.UUID, now: datetime) -> str:
    """A new session for the employee; returns the token for the cookie (it is stored nowhere)."""
    token = new_token()
    db.add(
        WebSession(token_hash=token_hash(token), employee_id=employee_id, created_at=now, last_seen_at=now)
    )
    await db.flush()
    return token


async def end_session(db: AsyncSession, token: str) -> bool:
    """End the session of this token (every copy of its cookie); False if it had ended already."""
    return await forget(db, token_hash(token))


async def forget(db: AsyncSession, digest: bytes) -> bool:
    result = await db.execute(delete(WebSession).where(WebSession.token_hash == digest))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def end_sessions_of(db: AsyncSession, employee_id: uuid.UUID) -> int:
    """End every session of one employee, on every device; returns how many there were.

    For a change that must take effect at once (an administrator corrects the employee, switches
    self-service off, removes them): call it in the transaction that makes the change, so the
    change and the sign-out commit together. Open event streams end within live.SESSION_CHECK_S."""
    result = await db.execute(delete(WebSession).where(WebSession.employee_id == employee_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def session_alive(db: AsyncSession, digest: bytes, *, policy: SessionPolicy, now: datetime) -> bool:
    """Whether the session of this token hash is still on (one primary-key read, no write)."""
    row = (
        await db.execute(
            select(WebSession.created_at, WebSession.last_seen_at).where(WebSession.token_hash == digest)
        )
    ).one_or_none()
    return (
        row is not None
        and policy.ended(now=now, created_at=row.created_at, last_seen_at=row.last_seen_at) is None
    )


async def touch(db: AsyncSession, digest: bytes, now: datetime) -> None:
    await db.execute(update(WebSession).where(WebSession.token_hash == digest).values(last_seen_at=now))


async def purge_expired(db: AsyncSession, *, policy: SessionPolicy, now: datetime) -> int:
    """Remove the sessions that are over (nobody came back to find them so); returns how many."""
    idle_cutoff, age_cutoff = policy.expired_before(now)
    result = await db.execute(
        delete(WebSession).where(
            or_(WebSession.last_seen_at <= idle_cutoff, WebSession.created_at <= age_cutoff)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_sessions(
    sessions: async_sessionmaker[AsyncSession],
    *,
    policy: SessionPolicy,
    clock: Clock,
    every_s: float = PURGE_EVERY_S,
) -> None:
    """Run for the life of the process: now and then remove the sessions that are over. Several
    portal processes may do so at once; deleting what is gone already is harmless."""
    while True:
        try:
            async with sessions.begin() as db:
                purged = await purge_expired(db, policy=policy, now=clock())
            if purged:
                log.info("ended sessions removed", count=purged)
        except Exception:
            # The database is away for a moment: the next round removes them.
            log.warning("could not remove ended sessions", exc_info=True)
        await asyncio.sleep(every_s)
