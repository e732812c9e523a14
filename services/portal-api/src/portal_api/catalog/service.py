"""What an employee can order and what it costs them: the catalog under the company's policy."""

from __future__ import annotations

from dataclasses import dataclass

from portal_api.catalog.policy import Decision, PolicyDocument, decide
from portal_api.catalog.products import Catalog, Product
from portal_api.models import Employee
from portal_api.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Offer:
    """A product as offered to one employee."""

    product: Product
    decision: Decision  # whether the policy allows it, and what the employee then pays
    active: bool  # the current plan, or an add-on already on the subscription


@dataclass(frozen=True, slots=True)
class Offers:
    offers: list[Offer]
    catalog: Catalog
    policy: PolicyDocument

    @property
    def covered_plan(self) -> Product | None:
        """The plan the employer pays in full (the employee pays the difference above it)."""
        return self.catalog.get(self.policy.plan_covered_up_to)


async def offers_for(uow: UnitOfWork, employee: Employee) -> Offers:
    catalog = await uow.products.catalog()
    policy = await uow.policies.of(employee.company_id)
    subscription = employee.subscription
    active = {s.product_code for s in subscription.services} if subscription else set()
    if subscription:
        active.add(subscription.plan_code)
    return Offers(
        [Offer(p, decide(policy, p, catalog=catalog), p.code in active) for p in catalog.products],
        catalog,
        policy,
    )
