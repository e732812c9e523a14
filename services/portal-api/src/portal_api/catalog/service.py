"""What an employee can order and what it costs them, from the catalog and the company's policy."""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from mport_shared.events import EmployeeCharge, OrderKind
from sqlalchemy import Engine, select
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


class PricedItem(Protocol):
    """What pricing reads of a product: a catalog row or its cached copy."""

    @property
    def code(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def price_ore(self) -> int: ...
    @property
    def billing(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogProduct:
    """An immutable copy of a catalog row, safe to share between requests and sessions."""

    code: str
    name: str
    kind: str
    category: str
    carrier_code: str
    price_ore: int
    billing: str
    data_gb: int | None


@dataclass(frozen=True, slots=True)
class ProductCatalog:
    products: tuple[CatalogProduct, ...]  # in catalog order
    by_code: Mapping[str, CatalogProduct]
    loaded_at: float


# The catalog is seeded from code (portal_api.catalog.products) and never edited at run time, so
# a copy per database is kept and reloaded now and then, in case it is reseeded under a running
# process. Keyed by engine: tests run several portals, each on its own database, in one process.
CATALOG_MAX_AGE_S = 60.0
_catalogs: weakref.WeakKeyDictionary[Engine, ProductCatalog] = weakref.WeakKeyDictionary()


async def product_catalog(session: AsyncSession) -> ProductCatalog:
    """The catalog, from the cache when it is fresh enough; one query otherwise."""
    engine = session.get_bind()
    cached = _catalogs.get(engine) if isinstance(engine, Engine) else None
    now = time.monotonic()
    if cached is not None and now - cached.loaded_at < CATALOG_MAX_AGE_S:
        return cached
    rows = (
        await session.execute(
            select(
                Product.code,
                Product.name,
                Product.kind,
                Product.category,
                Product.carrier_code,
                Product.price_ore,
                Product.billing,
                Product.data_gb,
            ).order_by(Product.sort_order)
        )
    ).all()
    products = tuple(
        CatalogProduct(
            code=r.code,
            name=r.name,
            kind=r.kind,
            category=r.category,
            carrier_code=r.carrier_code,
            price_ore=r.price_ore,
            billing=r.billing,
            data_gb=r.data_gb,
        )
        for r in rows
    )
    catalog = ProductCatalog(products, {p.code: p for p in products}, now)
    if isinstance(engine, Engine):
        _catalogs[engine] = catalog
    return catalog


async def load_policy(session: AsyncSession, company_id: uuid.UUID) -> PolicyDocument:
    # No query when the company's policy is already in the session (Company.policy is loaded
    # with every employee).
    row = await session.get(Policy, company_id)
    return PolicyDocument.model_validate(row.document) if row else PolicyDocument()


async def all_products(session: AsyncSession) -> list[Product]:
    return list((await session.scalars(select(Product).order_by(Product.sort_order))).all())


def price_for(
    product: PricedItem, policy: PolicyDocument, products: Mapping[str, PricedItem]
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
