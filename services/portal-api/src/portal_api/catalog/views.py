"""Catalog API: what the signed-in employee can order, and at what cost to them."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from portal_api.catalog.products import Product
from portal_api.catalog.service import Offer, offers_for
from portal_api.deps import SignedInEmployee, Uow
from portal_api.employees import signed_in_employee
from portal_api.errors import ErrorCode
from portal_api.problems import problem_responses

router = APIRouter(prefix="/api/v1", tags=["catalog"])


class CatalogItem(Product):
    """A product, and what it means for this employee under the company's mobile policy."""

    employee_pays_ore: int
    allowed: bool
    not_allowed_reason: str | None
    active: bool = Field(description="The current plan, or an add-on already on the subscription")

    @classmethod
    def of(cls, offer: Offer) -> CatalogItem:
        product = offer.product
        return cls(
            **dict(product),
            employee_pays_ore=offer.decision.charge.amount_ore,
            allowed=offer.decision.allowed,
            not_allowed_reason=offer.decision.reason,
            active=offer.active,
        )


@router.get("/catalog", responses=problem_responses(ErrorCode.NOT_SIGNED_IN))
async def get_catalog(who: SignedInEmployee, uow: Uow) -> list[CatalogItem]:
    employee = await signed_in_employee(uow, who.employee_id)
    return [CatalogItem.of(offer) for offer in (await offers_for(uow, employee)).offers]
