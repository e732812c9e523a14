"""What an employee can order and what it costs them, from the catalog and the company's policy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from mport_shared.events import EmployeeCharge, OrderKind
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal_api.catalog.policy import PolicyDocument, PricedProduct, decide
from portal_api.models import Employee, Policy, Product


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    product: Product
    allowed: bool
    charge: EmployeeCharge
    reason: str | None
    active: bool  # the current plan, or an add-on already on the subscription


async def load_policy(session: AsyncSession, company_id: uuid.UUID) -> PolicyDocument:
    row = await session.get(Policy, company_id)
    return PolicyDocument.model_validate(row.document) if row else PolicyDocument()


async def all_products(session: AsyncSession) -> list[Product]:
    return list((await session.scalars(select(Product).order_by(Product.sort_order))).all())


def price_for(
    product: Product, policy: PolicyDocument, products: dict[str, Product]
) -> tuple[bool, EmployeeCharge, str | None]:
    covered = products.get(policy.plan_covered_up_to or "")
    decision = decide(
        policy,
        PricedProduct(
            code=product.code,
            category=product.category,
            kind=OrderKind(product.kind),
            price_ore=product.price_ore,
            billing=product.billing,
        ),
        covered_plan_price_ore=covered.price_ore if covered else None,
    )
    return decision.allowed, decision.charge, decision.reason


async def catalog_for(session: AsyncSession, employee: Employee) -> list[CatalogEntry]:
    policy = await load_policy(session, employee.company_id)
    products = await all_products(session)
    by_code = {p.code: p for p in products}
    subscription = employee.subscription
    active_codes = {s.product_code for s in subscription.services} if subscription else set()
    if subscription:
        active_codes.add(subscription.plan_code)
    entries = []
    for product in products:
        allowed, charge, reason = price_for(product, policy, by_code)
        entries.append(
            CatalogEntry(
                product=product,
                allowed=allowed,
                charge=charge,
                reason=reason,
                active=product.code in active_codes,
            )
        )
    return entries
