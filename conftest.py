"""Fixtures every test directory shares (real RabbitMQ vhost, real PostgreSQL databases)."""

pytest_plugins = ["mport_shared.testing"]
