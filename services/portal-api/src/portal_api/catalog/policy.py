"""The mobile policy ("retningslinjer for mobilordningen"): who pays for what. Pure domain code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from mport_shared.events import Billing, EmployeeCharge, OrderKind
from pydantic import BaseModel, ConfigDict, Field

from portal_api.catalog.products import Catalog, Product


class Payer(StrEnum):
    EMPLOYER = "employer"
    EMPLOYEE = "employee"
    NOT_ALLOWED = "not_allowed"


class WageKind(StrEnum):
    """The kinds of deduction a company gives a wage type (lønnsart) each."""

    ONE_OFF_ADDON = "one_off_addon"  # Ekstra Data: once, in the period it completed
    MONTHLY_ADDON = "monthly_addon"  # Min Sky, Nettvern, Tvilling, Datakort: each month while active
    PLAN_DIFFERENCE = "plan_difference"  # the monthly difference above the plan the employer covers
    SIM = "sim"  # Bestill SIM, Aktiver nytt SIM, Hoved-SIM


# Wage types a payroll system would have for these (numbers in the 7000s are the usual range for
# deductions in Visma Lønn and Tripletex); a company's policy names its own.
DEFAULT_WAGE_TYPES: dict[WageKind, str] = {
    WageKind.ONE_OFF_ADDON: "7110",
    WageKind.MONTHLY_ADDON: "7120",
    WageKind.PLAN_DIFFERENCE: "7130",
    WageKind.SIM: "7140",
}
WAGE_TYPE_PATTERN = r"^[0-9]{1,6}$"


class PolicyRule(BaseModel):
    """Who pays for a product or category. With payer=employee, the employee pays the price in
    full, or a share: `employee_share_percent` of it, or a fixed `employee_share_ore` (at most
    the price); the two shares are not given together. 100 percent is the price in full, as no
    share is (policies stored before shares in øre say 100 for every rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    payer: Payer
    employee_share_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    employee_share_ore: Annotated[int, Field(ge=0)] | None = None

    @property
    def has_percent_share(self) -> bool:
        return self.employee_share_percent not in (None, 100)


class PolicyDocument(BaseModel):
    """Rules by product code or by category (a product's own rule wins); unlisted: employer pays.

    For plans, the employer covers up to `plan_covered_up_to` and the employee pays the monthly
    difference above it; a plan's own rule may only forbid it. `wage_types`: the company's wage
    type (lønnsart) per kind of deduction, which each order's events carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: dict[str, PolicyRule] = Field(default_factory=dict)
    plan_covered_up_to: str | None = None
    wage_types: dict[WageKind, str] = Field(default_factory=lambda: dict(DEFAULT_WAGE_TYPES))

    def wage_type_for(self, product: Product) -> str:
        kind = wage_kind(product)
        return self.wage_types.get(kind) or DEFAULT_WAGE_TYPES[kind]


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)
    allowed: bool
    charge: EmployeeCharge
    reason: str | None = None


def wage_kind(product: Product) -> WageKind:
    if product.kind is OrderKind.PLAN:
        return WageKind.PLAN_DIFFERENCE
    if product.kind in (OrderKind.SIM_ORDER, OrderKind.SIM_ACTIVATION) or product.category == "sim":
        return WageKind.SIM
    return WageKind.MONTHLY_ADDON if product.billing is Billing.MONTHLY else WageKind.ONE_OFF_ADDON


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
    if rule.employee_share_ore is not None:
        amount = min(rule.employee_share_ore, product.price_ore)
    else:  # rounded down: the employee is never charged an øre more than the share
        percent = 100 if rule.employee_share_percent is None else rule.employee_share_percent
        amount = product.price_ore * percent // 100
    return Decision(allowed=True, charge=EmployeeCharge(amount_ore=amount, billing=product.billing))


def _refused(product: Product) -> Decision:
    return Decision(
        allowed=False,
        charge=EmployeeCharge(amount_ore=0, billing=product.billing),
        reason="Not allowed by the company's mobile policy",
    )


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong with a policy: where (a JSON path of names) and why, for the 422."""

    loc: tuple[str, ...]
    msg: str


def policy_problems(policy: PolicyDocument, catalog: Catalog) -> list[PolicyProblem]:
    """What is wrong with a policy an administrator wants to save, against the catalog (the
    shapes and ranges are pydantic's; these are the rules between fields and products)."""
    problems: list[PolicyProblem] = []
    categories = {p.category for p in catalog.products}
    plans = {p.code for p in catalog.products if p.kind is OrderKind.PLAN}
    for key, rule in policy.rules.items():
        loc = ("rules", key)
        product = catalog.get(key)
        if product is None and key not in categories:
            problems.append(PolicyProblem(loc, f"{key!r} is neither a product code nor a category"))
            continue
        is_plan = key in plans or key == "plan"
        if is_plan and rule.payer is not Payer.NOT_ALLOWED:
            problems.append(
                PolicyProblem(
                    (*loc, "payer"),
                    "a plan's rule may only be not_allowed: the employee pays the difference "
                    "above plan_covered_up_to",
                )
            )
        if rule.payer is not Payer.EMPLOYEE:
            shares = {
                "employee_share_percent": rule.has_percent_share,
                "employee_share_ore": rule.employee_share_ore is not None,
            }
            for share in (name for name, given in shares.items() if given):
                problems.append(
                    PolicyProblem((*loc, share), f"a share needs payer employee, not {rule.payer}")
                )
        elif rule.has_percent_share and rule.employee_share_ore is not None:
            problems.append(
                PolicyProblem((*loc, "employee_share_ore"), "give a share in percent or in øre, not both")
            )
    if policy.plan_covered_up_to is not None and policy.plan_covered_up_to not in plans:
        problems.append(
            PolicyProblem(("plan_covered_up_to",), f"{policy.plan_covered_up_to!r} is not a plan")
        )
    for kind in WageKind:
        wage_type = policy.wage_types.get(kind)
        if wage_type is None:
            problems.append(PolicyProblem(("wage_types", kind.value), "a wage type is required"))
        elif not re.fullmatch(WAGE_TYPE_PATTERN, wage_type):
            problems.append(PolicyProblem(("wage_types", kind.value), "a wage type is 1 to 6 digits"))
    return problems


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
    wage_types=dict(DEFAULT_WAGE_TYPES),
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
    # Fjord Logistikk's payroll numbers its deductions in the 500s.
    wage_types={
        WageKind.ONE_OFF_ADDON: "510",
        WageKind.MONTHLY_ADDON: "520",
        WageKind.PLAN_DIFFERENCE: "530",
        WageKind.SIM: "540",
    },
)
