"""payroll-worker's own tables (so far its outbox and inbox)."""

from __future__ import annotations

from mport_shared.messaging.tables import messaging_tables
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    metadata = MetaData()


tables = messaging_tables(Base.metadata)
