"""Run the SMS gateway simulator under uvicorn: `python -m sms_simulator`."""

from __future__ import annotations

import uvicorn
from mport_shared.logging import configure_logging, get_logger
from mport_shared.settings import load_settings

from sms_simulator.app import create_app
from sms_simulator.settings import SimulatorSettings


def main() -> None:
    settings = load_settings(SimulatorSettings)
    configure_logging(service="sms-simulator", level=settings.log_level, json=settings.log_json)
    get_logger(__name__).info(
        "sms_simulator_starting",
        host=settings.host,
        port=settings.port,
        latency_ms=settings.latency_ms,
        unavailable_rate=settings.unavailable_rate,
        reject_all=settings.reject_all,
        reject_prefixes=list(settings.reject_prefixes),
        undelivered_rate=settings.undelivered_rate,
        dlr_delay_ms=settings.dlr_delay_ms,
    )
    # log_config=None keeps uvicorn's loggers on the shared JSON set-up instead of its own; no
    # access log: each request's query holds the sendsms password and the SMS text.
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
