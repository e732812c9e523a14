"""Run the carrier simulator under uvicorn: `python -m carrier_simulator`."""

from __future__ import annotations

import uvicorn
from mport_shared.logging import configure_logging, get_logger
from mport_shared.settings import load_settings

from carrier_simulator.app import create_app
from carrier_simulator.settings import SimulatorSettings


def main() -> None:
    settings = load_settings(SimulatorSettings)
    configure_logging(service="carrier-simulator", level=settings.log_level, json=settings.log_json)
    get_logger(__name__).info(
        "carrier_simulator_starting",
        host=settings.host,
        port=settings.port,
        latency_ms=settings.latency_ms,
        latency_jitter_ms=settings.latency_jitter_ms,
        failure_rate=settings.failure_rate,
        unavailable_rate=settings.unavailable_rate,
        notification_drop_rate=settings.notification_drop_rate,
        down=settings.down,
        state_file=None if settings.state_file is None else str(settings.state_file),
        known_offerings=len(settings.known_offerings),
    )
    # log_config=None keeps uvicorn's loggers on the shared JSON set-up instead of its own.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
