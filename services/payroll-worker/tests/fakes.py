"""An in-memory ledger: applies the domain's Changes as the SQL store does, for tests without I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from mport_shared.events import OrderCompleted, OrderFailed
from payroll_worker import domain
from payroll_worker.domain import Book, Changes, RecordedLine, Service

DEFAULT_WAGE_TYPE = "7000"


@dataclass
class Ledger:
    last_closed: str | None = None
    services: dict[uuid.UUID, Service] = field(default_factory=dict)
    lines: dict[uuid.UUID, RecordedLine] = field(default_factory=dict)
    failed: set[uuid.UUID] = field(default_factory=set)
    endings: dict[uuid.UUID, str] = field(default_factory=dict)

    def book(self) -> Book:
        return Book(
            last_closed=self.last_closed,
            services=dict(self.services),
            lines=tuple(self.lines.values()),
            failed=frozenset(self.failed),
            endings=dict(self.endings),
        )

    def apply(self, changes: Changes) -> Changes:
        for recorded in changes.lines:
            # The SQL store's unique keys: a line id, and an (order, kind, period) once.
            assert recorded.line.line_id not in self.lines, f"line twice: {recorded}"
            self.lines[recorded.line.line_id] = recorded
        for service in changes.services:
            self.services[service.order_id] = service
        if changes.failed is not None:
            self.failed.add(changes.failed)
        if changes.ending is not None:
            # Two endings of one service (a second Avslutt): the earlier one holds.
            known = self.endings.get(changes.ending.order_id, changes.ending.from_period)
            self.endings[changes.ending.order_id] = min(known, changes.ending.from_period)
        if changes.closed is not None:
            self.last_closed = max(self.last_closed or changes.closed, changes.closed)
        return changes

    def completed(self, event: OrderCompleted) -> Changes:
        return self.apply(domain.on_completed(event, self.book(), default_wage_type=DEFAULT_WAGE_TYPE))

    def failed_(self, event: OrderFailed) -> Changes:
        return self.apply(domain.on_failed(event, self.book()))

    def close(self, period: str) -> Changes:
        return self.apply(domain.on_close(period, self.book()))
