"""The catalog and the two demo companies (DESIGN §12): Demo Bedrift AS of the seed guide, and
Fjord Logistikk AS, there to show that one company sees nothing of another. Safe to run repeatedly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_api.catalog.policy import DEMO_POLICY, FJORD_POLICY, PolicyDocument
from portal_api.catalog.products import CATALOG
from portal_api.models import ActiveService, Company, Employee, Policy, SimCard, Subscription
from portal_api.repositories import save_catalog

DEMO_COMPANY_ID = uuid.UUID("6d706f72-7400-4000-8000-000000000001")
FJORD_COMPANY_ID = uuid.UUID("6d706f72-7400-4000-8000-000000000002")


# When the demo people with active self-service confirmed their numbers.
DEMO_VERIFIED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DemoPerson:
    id: uuid.UUID
    name: str
    email: str
    employee_number: str
    msisdn: str | None
    self_service_active: bool
    is_admin: bool = False
    plan_code: str = "bedrift-total-c"


@dataclass(frozen=True)
class DemoCompany:
    id: uuid.UUID
    name: str
    policy: PolicyDocument
    people: tuple[DemoPerson, ...]


KARI = DemoPerson(
    uuid.UUID("6d706f72-7400-4000-8000-000000001001"),
    "Kari Nordmann",
    "kari.nordmann@demo.no",
    "1001",
    "4791234567",
    self_service_active=True,
)
HAKON = DemoPerson(
    uuid.UUID("6d706f72-7400-4000-8000-000000001002"),
    "Håkon Hafell",
    "hakon.hafell@demo.no",
    "1002",
    "4748123456",
    self_service_active=False,
)
INGRID = DemoPerson(
    uuid.UUID("6d706f72-7400-4000-8000-000000001003"),
    "Ingrid Berg",
    "admin@demo.no",
    "1003",
    None,
    self_service_active=False,
    is_admin=True,
)
SIRI = DemoPerson(
    uuid.UUID("6d706f72-7400-4000-8000-000000002001"),
    "Siri Dahl",
    "siri.dahl@fjordlogistikk.no",
    "2001",
    "4790011223",
    self_service_active=True,
)
PER = DemoPerson(
    uuid.UUID("6d706f72-7400-4000-8000-000000002002"),
    "Per Fjell",
    "admin@fjordlogistikk.no",
    "2002",
    None,
    self_service_active=False,
    is_admin=True,
)

DEMO_BEDRIFT = DemoCompany(DEMO_COMPANY_ID, "Demo Bedrift AS", DEMO_POLICY, (KARI, HAKON, INGRID))
FJORD_LOGISTIKK = DemoCompany(FJORD_COMPANY_ID, "Fjord Logistikk AS", FJORD_POLICY, (SIRI, PER))
DEMO_COMPANIES = (DEMO_BEDRIFT, FJORD_LOGISTIKK)


async def seed_catalog(session: AsyncSession) -> None:
    await save_catalog(session, CATALOG)


async def seed_company(session: AsyncSession, company: DemoCompany) -> None:
    """The company, its policy and its people, unless it is there already (then nothing changes:
    what someone did with the demo data in a local run stays)."""
    if await session.get(Company, company.id) is not None:
        return
    session.add(Company(id=company.id, name=company.name))
    session.add(Policy(company_id=company.id, document=company.policy.model_dump(mode="json")))
    await session.flush()
    for person in company.people:
        session.add(
            Employee(
                id=person.id,
                company_id=company.id,
                email=person.email,
                name=person.name,
                employee_number=person.employee_number,
                is_admin=person.is_admin,
                self_service_active=person.self_service_active,
                phone_verified_at=DEMO_VERIFIED_AT if person.self_service_active else None,
            )
        )
        await session.flush()
        if person.msisdn is None:
            continue
        subscription = Subscription(employee_id=person.id, msisdn=person.msisdn, plan_code=person.plan_code)
        session.add(subscription)
        await session.flush()
        session.add(
            SimCard(subscription_id=subscription.id, label="Sim hovedkort", is_main=True, status="active")
        )
        session.add(ActiveService(subscription_id=subscription.id, product_code="hoved-sim"))


async def seed(sessions: async_sessionmaker[AsyncSession], *, demo: bool = True) -> None:
    async with sessions.begin() as session:
        await seed_catalog(session)
        if demo:
            await session.flush()
            for company in DEMO_COMPANIES:
                await seed_company(session, company)
