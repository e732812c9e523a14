"""A local stand-in for an SMS gateway speaking Kannel's HTTP sendsms, for development and tests."""

from sms_simulator.app import create_app
from sms_simulator.settings import SimulatorSettings

__all__ = ["SimulatorSettings", "create_app"]
