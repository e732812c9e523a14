"""`python -m portal_api seed`: both demo companies, added to a database that lacks one, and
nothing changed by seeding again."""

from __future__ import annotations

import pytest
from mport_shared.db import create_engine, session_factory
from mport_shared.testing import MakeDatabase
from portal_api.catalog.policy import DEMO_POLICY, FJORD_POLICY
from portal_api.models import Company, Employee, Policy
from portal_api.seed import (
    DEMO_BEDRIFT,
    DEMO_COMPANIES,
    FJORD_LOGISTIKK,
    KARI,
    PER,
    SIRI,
    seed,
    seed_catalog,
    seed_company,
)
from sqlalchemy import select

pytestmark = pytest.mark.integration


async def test_seeding_adds_fjord_logistikk_to_an_older_database_and_changes_nothing_when_repeated(
    make_database: MakeDatabase,
) -> None:
    engine = create_engine(await make_database("portal_api:migrations"))
    sessions = session_factory(engine)
    try:
        async with sessions.begin() as session:  # seeded before there was a second company
            await seed_catalog(session)
            await session.flush()
            await seed_company(session, DEMO_BEDRIFT)
        async with sessions.begin() as session:  # what someone did in their local run
            kari = await session.get(Employee, KARI.id)
            assert kari is not None
            kari.self_service_active = False

        await seed(sessions)
        await seed(sessions)

        async with sessions() as session:
            companies = {c.id: c.name for c in (await session.scalars(select(Company))).all()}
            people = {(e.company_id, e.email) for e in (await session.scalars(select(Employee))).all()}
            policies = {p.company_id: p.document for p in (await session.scalars(select(Policy))).all()}
            kari = await session.get(Employee, KARI.id)
            siri = await session.get(Employee, SIRI.id)
            per = await session.get(Employee, PER.id)
            assert kari is not None
            assert siri is not None
            assert per is not None
            assert siri.subscription is not None
            siri_subscription = (
                siri.subscription.msisdn,
                siri.subscription.plan_code,
                [(s.label, s.status) for s in siri.subscription.sim_cards],
                [s.product_code for s in siri.subscription.services],
            )
    finally:
        await engine.dispose()
    assert companies == {DEMO_BEDRIFT.id: "Demo Bedrift AS", FJORD_LOGISTIKK.id: "Fjord Logistikk AS"}
    assert people == {(c.id, p.email) for c in DEMO_COMPANIES for p in c.people}
    assert policies == {
        DEMO_BEDRIFT.id: DEMO_POLICY.model_dump(mode="json"),
        FJORD_LOGISTIKK.id: FJORD_POLICY.model_dump(mode="json"),
    }
    assert kari.self_service_active is False  # kept
    assert (siri.name, siri.employee_number, siri.self_service_active, siri.is_admin) == (
        "Siri Dahl",
        "2001",
        True,
        False,
    )
    assert siri_subscription == (
        "4790011223",
        "bedrift-total-c",
        [("Sim hovedkort", "active")],
        ["hoved-sim"],
    )
    assert (per.name, per.is_admin, per.subscription) == ("Per Fjell", True, None)
