"""Fixtures every test directory shares (real RabbitMQ vhost, real PostgreSQL databases)."""

from __future__ import annotations

import pytest

pytest_plugins = ["mport_shared.testing"]

# The files that start whole systems take the longest: run first, they no longer leave one
# parallel worker (pytest-xdist) busy with them at the end while the other sits idle.
_SLOW_FIRST = (
    "tests/e2e/",
    "tests/browser/",
    "_browser.py",
    "test_worker.py",
    "test_supervision.py",
    "order-worker/tests/test_provisioning.py",
    "payroll-worker/tests/test_payroll.py",
    "test_store_property.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def slow_first(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return 0 if any(part in path for part in _SLOW_FIRST) else 1

    items.sort(key=slow_first)  # stable: each file's tests stay together and in order
