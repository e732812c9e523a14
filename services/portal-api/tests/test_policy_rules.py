"""The mobile policy's rules without I/O: each kind of payer, a share in percent or a fixed amount,
the plan difference, not allowed, the wage type per kind, and what makes a policy invalid."""

from __future__ import annotations

import pytest
from mport_shared.events import Billing
from portal_api.catalog.policy import (
    DEFAULT_WAGE_TYPES,
    DEMO_POLICY,
    FJORD_POLICY,
    Payer,
    PolicyDocument,
    PolicyRule,
    WageKind,
    decide,
    policy_problems,
)
from portal_api.catalog.products import CATALOG, Catalog
from pydantic import ValidationError

CAT = Catalog(CATALOG)


def pays(policy: PolicyDocument, code: str) -> int | None:
    product = CAT.get(code)
    assert product is not None
    decision = decide(policy, product, catalog=CAT)
    return decision.charge.amount_ore if decision.allowed else None


def rules(**by_key: PolicyRule) -> PolicyDocument:
    return PolicyDocument(rules=by_key)


def test_the_employer_pays_what_no_rule_names_and_what_a_rule_gives_the_employer() -> None:
    assert pays(PolicyDocument(), "ekstra-data-15gb") == 0
    assert pays(rules(nettvern=PolicyRule(payer=Payer.EMPLOYER)), "nettvern") == 0


def test_the_employee_pays_in_full_a_percent_rounded_down_or_a_fixed_amount_at_most_the_price() -> None:
    full = rules(ekstra_data=PolicyRule(payer=Payer.EMPLOYEE))
    assert pays(full, "ekstra-data-15gb") == 14_900
    third = rules(ekstra_data=PolicyRule(payer=Payer.EMPLOYEE, employee_share_percent=33))
    assert pays(third, "ekstra-data-15gb") == 4_917
    assert pays(third, "ekstra-data-5gb") == 2_607  # 33 % of 7 900
    fixed = rules(tvilling=PolicyRule(payer=Payer.EMPLOYEE, employee_share_ore=2_500))
    assert pays(fixed, "tvilling") == 2_500
    more_than_the_price = rules(tvilling=PolicyRule(payer=Payer.EMPLOYEE, employee_share_ore=99_900))
    assert pays(more_than_the_price, "tvilling") == 6_900


def test_a_products_own_rule_wins_over_its_categorys() -> None:
    policy = rules(
        ekstra_data=PolicyRule(payer=Payer.EMPLOYEE),
        **{"ekstra-data-1gb": PolicyRule(payer=Payer.EMPLOYER)},
    )
    assert pays(policy, "ekstra-data-1gb") == 0
    assert pays(policy, "ekstra-data-5gb") == 7_900


def test_not_allowed_refuses_the_product_and_charges_nothing() -> None:
    product = CAT.get("datakort")
    assert product is not None
    decision = decide(rules(datakort=PolicyRule(payer=Payer.NOT_ALLOWED)), product, catalog=CAT)
    assert (decision.allowed, decision.charge.amount_ore) == (False, 0)


def test_a_plan_costs_the_monthly_difference_above_the_covered_plan() -> None:
    policy = PolicyDocument(plan_covered_up_to="bedrift-total-c")
    assert pays(policy, "bedrift-total-a") == 0  # below the ceiling: nothing back
    assert pays(policy, "bedrift-total-c") == 0
    assert pays(policy, "bedrift-total-e") == 49_900 - 39_900
    product = CAT.get("bedrift-total-e")
    assert product is not None
    assert decide(policy, product, catalog=CAT).charge.billing is Billing.MONTHLY
    assert pays(PolicyDocument(), "bedrift-total-e") == 0  # no ceiling: the employer pays any plan
    forbidden = PolicyDocument(
        plan_covered_up_to="bedrift-total-c", rules={"bedrift-total-e": PolicyRule(payer=Payer.NOT_ALLOWED)}
    )
    assert pays(forbidden, "bedrift-total-e") is None


def test_each_kind_of_order_has_the_companys_wage_type() -> None:
    def wage_type(policy: PolicyDocument, code: str) -> str:
        product = CAT.get(code)
        assert product is not None
        return policy.wage_type_for(product)

    assert [
        wage_type(FJORD_POLICY, c)
        for c in ("ekstra-data-5gb", "min-sky-25gb", "bedrift-total-e", "bestill-sim")
    ] == [
        "510",
        "520",
        "530",
        "540",
    ]
    assert wage_type(PolicyDocument(), "ekstra-data-5gb") == DEFAULT_WAGE_TYPES[WageKind.ONE_OFF_ADDON]
    assert wage_type(DEMO_POLICY, "hoved-sim") == DEFAULT_WAGE_TYPES[WageKind.SIM]


def test_the_demo_policies_are_valid() -> None:
    assert policy_problems(DEMO_POLICY, CAT) == []
    assert policy_problems(FJORD_POLICY, CAT) == []


def problems_of(document: dict[str, object]) -> list[tuple[tuple[str, ...], str]]:
    return [(p.loc, p.msg) for p in policy_problems(PolicyDocument.model_validate(document), CAT)]


SHARE_BOTH = {"payer": "employee", "employee_share_percent": 50, "employee_share_ore": 100}
THREE_WAGE_TYPES = {"one_off_addon": "7110", "monthly_addon": "7120", "plan_difference": "7130"}


@pytest.mark.parametrize(
    ("document", "loc", "words"),
    [
        ({"rules": {"ekstra-dta": {"payer": "employee"}}}, ("rules", "ekstra-dta"), "neither a product"),
        (
            {"rules": {"nettvern": {"payer": "employer", "employee_share_percent": 50}}},
            ("rules", "nettvern", "employee_share_percent"),
            "needs payer employee",
        ),
        (
            {"rules": {"datakort": {"payer": "not_allowed", "employee_share_ore": 100}}},
            ("rules", "datakort", "employee_share_ore"),
            "needs payer employee",
        ),
        ({"rules": {"tvilling": SHARE_BOTH}}, ("rules", "tvilling", "employee_share_ore"), "not both"),
        (
            {"rules": {"bedrift-total-e": {"payer": "employee"}}},
            ("rules", "bedrift-total-e", "payer"),
            "only be not_allowed",
        ),
        ({"rules": {"plan": {"payer": "employer"}}}, ("rules", "plan", "payer"), "only be not_allowed"),
        ({"plan_covered_up_to": "nettvern"}, ("plan_covered_up_to",), "not a plan"),
        ({"wage_types": THREE_WAGE_TYPES}, ("wage_types", "sim"), "required"),
        (
            {"wage_types": {**DEFAULT_WAGE_TYPES, WageKind.SIM: "71-40"}},
            ("wage_types", "sim"),
            "1 to 6 digits",
        ),
    ],
)
def test_an_invalid_policy_names_what_is_wrong(
    document: dict[str, object], loc: tuple[str, ...], words: str
) -> None:
    [(where, why)] = problems_of(document)
    assert where == loc
    assert words in why


def test_shapes_and_ranges_are_refused_when_read() -> None:
    for bad in (
        {"rules": {"tvilling": {"payer": "someone"}}},
        {"rules": {"tvilling": {"payer": "employee", "employee_share_percent": 101}}},
        {"rules": {"tvilling": {"payer": "employee", "employee_share_ore": -1}}},
        {"wage_types": {"roaming": "7150"}},
        {"colour": "blue"},
    ):
        with pytest.raises(ValidationError):
            PolicyDocument.model_validate(bad)


def test_a_policy_stored_before_wage_types_reads_with_the_default_ones() -> None:
    stored = {
        "rules": {"nettvern": {"payer": "employer", "employee_share_percent": 100}},
        "plan_covered_up_to": None,
    }
    assert PolicyDocument.model_validate(stored).wage_types == DEFAULT_WAGE_TYPES
