"""Catalog API: what the signed-in employee can order, and at what cost to them."""

from __future__ import annotations

from fastapi import APIRouter
from mport_shared.events import Billing, OrderKind
from pydantic import BaseModel

from portal_api.catalog.service import catalog_for
from portal_api.deps import CurrentEmployee, Db

router = APIRouter(prefix="/api/v1", tags=["catalog"])


class CatalogItem(BaseModel):
    code: str
    name: str
    kind: OrderKind
    category: str
    carrier_product_code: str
    price_ore: int
    billing: Billing
    employee_pays_ore: int
    allowed: bool
    not_allowed_reason: str | None
    active: bool
    norway_only: bool


@router.get("/catalog")
async def get_catalog(employee: CurrentEmployee, db: Db) -> list[CatalogItem]:
    return [
        CatalogItem(
            code=e.product.code,
            name=e.product.name,
            kind=OrderKind(e.product.kind),
            category=e.product.category,
            carrier_product_code=e.product.carrier_code,
            price_ore=e.product.price_ore,
            billing=Billing(e.product.billing),
            employee_pays_ore=e.charge.amount_ore,
            allowed=e.allowed,
            not_allowed_reason=e.reason,
            active=e.active,
            norway_only=e.product.category == "ekstra_data",
        )
        for e in await catalog_for(db, employee)
    ]
