"""What the payroll-worker's tests share: order events as the order-worker publishes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from mport_shared.events import (
    Billing,
    Consent,
    EmployeeCharge,
    OrderCompleted,
    OrderFailed,
    OrderKind,
    OrderSnapshot,
)

COMPANY = uuid.UUID("00000000-0000-4000-8000-00000000c0de")
KARI = uuid.UUID("00000000-0000-4000-8000-000000001001")


def snapshot(
    *,
    amount_ore: int = 4_900,
    billing: Billing = Billing.ONE_OFF,
    kind: OrderKind = OrderKind.ADDON,
    action: str = "add",
    product_code: str = "ekstra_data_15gb",
    product_name: str = "Ekstra Data 15GB",
    employee_id: uuid.UUID = KARI,
    employee_number: str = "1001",
    company_id: uuid.UUID = COMPANY,
    order_id: uuid.UUID | None = None,
    ends_order_id: uuid.UUID | None = None,
    wage_type: str | None = "7100",
) -> OrderSnapshot:
    order_id = order_id or uuid.uuid4()
    placed_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    consent = (
        Consent(
            consent_id=uuid.uuid5(order_id, "consent"),
            employee_id=employee_id,
            accepted_at=placed_at,
            amount_ore=amount_ore,
            billing=billing,
            text=f"{product_name}: {amount_ore / 100:.2f} kr trekkes i lønn",
        )
        if amount_ore
        else None
    )
    return OrderSnapshot(
        order_id=order_id,
        company_id=company_id,
        employee_id=employee_id,
        employee_number=employee_number,
        msisdn="4791234567",
        product_code=product_code,
        carrier_product_code=product_code,
        kind=kind,
        action=action,  # type: ignore[arg-type]
        employee_charge=EmployeeCharge(amount_ore=amount_ore, billing=billing),
        placed_at=placed_at,
        product_name=product_name,
        wage_type=wage_type,
        consent=consent,
        ends_order_id=ends_order_id,
    )


def completed(order: OrderSnapshot, at: datetime) -> OrderCompleted:
    return OrderCompleted(order=order, carrier_order_id=f"CO-{order.order_id}", completed_at=at)


def failed(order: OrderSnapshot, at: datetime, reason: str = "Rejected by the carrier") -> OrderFailed:
    zero = order.model_copy(
        update={"employee_charge": EmployeeCharge(amount_ore=0, billing=order.employee_charge.billing)}
    )
    return OrderFailed(order=zero, carrier_order_id=None, reason=reason, failed_at=at)
