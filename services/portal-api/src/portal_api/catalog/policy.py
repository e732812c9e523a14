"""The mobile policy ("retningslinjer for mobilordningen"): who pays for what. Pure domain code."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from mport_shared.events import Billing, EmployeeCharge, OrderKind
from pydantic import BaseModel, ConfigDict, Field

from portal_api.catalog.products import Catalog, Product


class Payer(StrEnum):
    EMPLOYER = "employer"
    EMPLOYEE = "employee"
    NOT_ALLOWED = "not_allowed"


class PolicyRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    payer: Payer
    # With payer=employee: the employee's share of the price, in percent.
    employee_share_percent: Annotated[int, Field(ge=0, le=100)] = 100


class PolicyDocument(BaseModel):
    """Rules by product code or by category (a product's own rule wins); unlisted: employer pays.

    For plans, the employer covers up to `plan_covered_up_to` and the employee pays the monthly
    difference above it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: dict[str, PolicyRule] = Field(default_factory=dict)
    plan_covered_up_to: str | None = None


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)
    allowed: bool
    charge: EmployeeCharge
    reason: str | None = None


def decide(policy: PolicyDocument, product: Product, *, catalog: Catalog) -> Decision:
    """Whether the employee may order the product, and what they then pay (for a plan, the
    difference above the plan the policy covers, which `catalog` prices)."""
    if product.kind is OrderKind.PLAN:
        rule = policy.rules.get(product.code)
        if rule is not None and rule.payer is Payer.NOT_ALLOWED:
            return _refused(product)
        covered = catalog.get(policy.plan_covered_up_to)
        ceiling = covered.price_ore if covered is not None else product.price_ore
        return Decision(
            allowed=True,
            charge=EmployeeCharge(amount_ore=max(product.price_ore - ceiling, 0), billing=Billing.MONTHLY),
        )
    rule = policy.rules.get(product.code) or policy.rules.get(product.category)
    if rule is None or rule.payer is Payer.EMPLOYER:
        return Decision(allowed=True, charge=EmployeeCharge(amount_ore=0, billing=product.billing))
    if rule.payer is Payer.NOT_ALLOWED:
        return _refused(product)
    amount = product.price_ore * rule.employee_share_percent // 100
    return Decision(allowed=True, charge=EmployeeCharge(amount_ore=amount, billing=product.billing))


def _refused(product: Product) -> Decision:
    return Decision(
        allowed=False,
        charge=EmployeeCharge(amount_ore=0, billing=product.billing),
        reason="Not allowed by the company's mobile policy",
    )


# Demo Bedrift AS, as the seed implies ("endringer du gjør vil medføre lønnstrekk").
DEMO_POLICY = PolicyDocument(
    rules={
        "ekstra_data": PolicyRule(payer=Payer.EMPLOYEE),
        "min_sky": PolicyRule(payer=Payer.EMPLOYEE, employee_share_percent=50),
        "nettvern": PolicyRule(payer=Payer.EMPLOYER),
        "tvilling": PolicyRule(payer=Payer.EMPLOYER),
        "datakort": PolicyRule(payer=Payer.NOT_ALLOWED),
        "sim": PolicyRule(payer=Payer.EMPLOYER),
    },
    plan_covered_up_to="bedrift-total-c",
)

# Fjord Logistikk AS, the second demo company: a haulier whose drivers live on mobile data, so it
# differs from Demo Bedrift's on every rule an employee would notice. The employer covers plans up
# to Bedrift Total D, half of every Ekstra Data top-up, and the Datakort for the tablet in the cab;
# the employee pays a Tvilling in full; Min Sky is not allowed (files belong in the company's cloud).
FJORD_POLICY = PolicyDocument(
    rules={
        "ekstra_data": PolicyRule(payer=Payer.EMPLOYEE, employee_share_percent=50),
        "min_sky": PolicyRule(payer=Payer.NOT_ALLOWED),
        "nettvern": PolicyRule(payer=Payer.EMPLOYER),
        "tvilling": PolicyRule(payer=Payer.EMPLOYEE),
        "datakort": PolicyRule(payer=Payer.EMPLOYER),
        "sim": PolicyRule(payer=Payer.EMPLOYER),
    },
    plan_covered_up_to="bedrift-total-d",
)
