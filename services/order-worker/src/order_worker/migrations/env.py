"""Alembic environment of order-worker's database."""

from mport_shared.migrations_env import run_migrations

from order_worker.models import Base

run_migrations(Base.metadata)
