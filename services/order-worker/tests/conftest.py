"""What the order-worker's tests share: an order as the portal would place it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from mport_shared.events import Billing, EmployeeCharge, OrderKind, OrderSnapshot


def snapshot(
    *,
    kind: OrderKind = OrderKind.ADDON,
    carrier_product_code: str = "Tvilling",
    placed_at: datetime | None = None,
    charge_ore: int = 6_900,
) -> OrderSnapshot:
    return OrderSnapshot(
        order_id=uuid.uuid4(),
        company_id=uuid.uuid4(),
        employee_id=uuid.uuid4(),
        employee_number="1001",
        msisdn="4791234567",
        product_code="tvilling",
        carrier_product_code=carrier_product_code,
        kind=kind,
        action="add",
        employee_charge=EmployeeCharge(amount_ore=charge_ore, billing=Billing.MONTHLY),
        placed_at=placed_at or datetime.now(UTC),
    )
