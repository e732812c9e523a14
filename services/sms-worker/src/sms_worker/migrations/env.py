"""Alembic environment of sms-worker's database."""

from mport_shared.migrations_env import run_migrations

from sms_worker.models import Base

run_migrations(Base.metadata)
