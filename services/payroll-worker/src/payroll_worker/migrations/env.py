"""Alembic environment of payroll-worker's database."""

from mport_shared.migrations_env import run_migrations

from payroll_worker.models import Base

run_migrations(Base.metadata)
