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
    failed: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # order → employee
    endings: dict[uuid.UUID, tuple[str, uuid.UUID]] = field(default_factory=dict)  # → (from, employee)

    def book(self, employee_id: uuid.UUID | None = None) -> Book:
        """What the SQL store loads: for an event, only the employee's own; for a close, all."""

        def mine(of: uuid.UUID) -> bool:
            return employee_id is None or of == employee_id

        return Book(
            last_closed=self.last_closed,
            services={k: v for k, v in self.services.items() if mine(v.employee_id)},
            lines=tuple(r for r in self.lines.values() if mine(r.line.employee_id)),
            failed=frozenset(k for k, e in self.failed.items() if mine(e)),
            endings={k: p for k, (p, e) in self.endings.items() if mine(e)},
        )

    def apply(self, changes: Changes) -> Changes:
        for recorded in changes.lines:
            # The SQL store's unique keys: a line id, and an (order, kind, period) once.
            assert recorded.line.line_id not in self.lines, f"line twice: {recorded}"
            self.lines[recorded.line.line_id] = recorded
        for service in changes.services:
            self.services[service.order_id] = service
        if changes.failed is not None:
            assert changes.failed_employee_id is not None
            self.failed.setdefault(changes.failed, changes.failed_employee_id)
        if changes.ending is not None:
            # Two endings of one service (a second Avslutt): the earlier one holds.
            ending = changes.ending
            known = self.endings.get(ending.order_id, (ending.from_period, ending.employee_id))
            self.endings[ending.order_id] = (min(known[0], ending.from_period), known[1])
        if changes.closed is not None:
            self.last_closed = max(self.last_closed or changes.closed, changes.closed)
        return changes

    def completed(self, event: OrderCompleted) -> Changes:
        book = self.book(event.order.employee_id)
        return self.apply(domain.on_completed(event, book, default_wage_type=DEFAULT_WAGE_TYPE))

    def failed_(self, event: OrderFailed) -> Changes:
        return self.apply(domain.on_failed(event, self.book(event.order.employee_id)))

    def close(self, period: str) -> Changes:
        return self.apply(domain.on_close(period, self.book()))
