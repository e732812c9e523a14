"""sms-worker settings, from the environment."""

from __future__ import annotations

from mport_shared.settings import ServiceSettings


class SmsWorkerSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///var/sms-worker.db"
    http_port: int = 8092
