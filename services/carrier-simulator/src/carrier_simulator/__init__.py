"""A local stand-in for the mobile carrier's TMF622 Product Ordering API, for development and tests."""

from carrier_simulator.app import create_app
from carrier_simulator.settings import SimulatorSettings

__all__ = ["SimulatorSettings", "create_app"]
