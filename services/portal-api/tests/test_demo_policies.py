"""The two demo companies' mobile policies, decided without I/O: Fjord Logistikk AS's differs from
Demo Bedrift AS's in what an employee notices."""

from __future__ import annotations

from portal_api.catalog.policy import DEMO_POLICY, FJORD_POLICY, PolicyDocument, decide
from portal_api.catalog.products import CATALOG, Catalog

PRODUCTS = Catalog(CATALOG).by_code


def employee_pays(policy: PolicyDocument, code: str) -> int | None:
    """Øre the employee pays (a month, for monthly products), or None when not allowed."""
    decision = decide(policy, PRODUCTS[code], catalog=Catalog(CATALOG))
    return decision.charge.amount_ore if decision.allowed else None


def test_demo_bedrift_follows_the_seed() -> None:
    assert {code: employee_pays(DEMO_POLICY, code) for code in PRODUCTS} == {
        "hoved-sim": 0,
        "ekstra-data-50gb": 24_900,
        "ekstra-data-15gb": 14_900,
        "ekstra-data-5gb": 7_900,
        "ekstra-data-1gb": 2_900,
        "min-sky-50gb": 3_950,
        "min-sky-25gb": 2_450,
        "min-sky-10gb": 1_450,
        "nettvern": 0,
        "tvilling": 0,
        "datakort": None,
        "bedrift-total-a": 0,
        "bedrift-total-b": 0,
        "bedrift-total-c": 0,
        "bedrift-total-d": 5_000,
        "bedrift-total-e": 10_000,
        "bestill-sim": 0,
        "aktiver-nytt-sim": 0,
    }


def test_fjord_logistikk_pays_more_data_and_the_datakort_and_allows_no_min_sky() -> None:
    assert {code: employee_pays(FJORD_POLICY, code) for code in PRODUCTS} == {
        "hoved-sim": 0,
        "ekstra-data-50gb": 12_450,
        "ekstra-data-15gb": 7_450,
        "ekstra-data-5gb": 3_950,
        "ekstra-data-1gb": 1_450,
        "min-sky-50gb": None,
        "min-sky-25gb": None,
        "min-sky-10gb": None,
        "nettvern": 0,
        "tvilling": 6_900,
        "datakort": 0,
        "bedrift-total-a": 0,
        "bedrift-total-b": 0,
        "bedrift-total-c": 0,
        "bedrift-total-d": 0,
        "bedrift-total-e": 5_000,
        "bestill-sim": 0,
        "aktiver-nytt-sim": 0,
    }
