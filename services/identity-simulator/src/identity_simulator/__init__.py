"""A local OpenID Connect identity provider (the work account of "Bruk jobbkonto"), for development
and tests."""

from identity_simulator.app import create_app
from identity_simulator.settings import IdentitySimSettings

__all__ = ["IdentitySimSettings", "create_app"]
