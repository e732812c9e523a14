"""Alembic environment of portal-api's database."""

from mport_shared.migrations_env import run_migrations

from portal_api.models import Base

run_migrations(Base.metadata)
