"""`GET /api/v1/me`: the signed-in employee and their subscription."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, Field

from portal_api.deps import SignedInEmployee, Uow
from portal_api.employees import signed_in_employee
from portal_api.errors import ErrorCode
from portal_api.models import Employee
from portal_api.problems import problem_responses
from portal_api.unit_of_work import UnitOfWork

router = APIRouter(prefix="/api/v1", tags=["subscription"])


class SimCardOut(BaseModel):
    id: uuid.UUID
    label: str
    is_main: bool = Field(description="The subscription's main SIM, which Aktiver nytt SIM replaces")
    icc: str | None
    status: str


class ActiveServiceOut(BaseModel):
    product_code: str
    name: str


class PlanOut(BaseModel):
    code: str
    name: str


class SubscriptionOut(BaseModel):
    msisdn: str
    plan: PlanOut
    sim_cards: list[SimCardOut]
    active_services: list[ActiveServiceOut]


class MeOut(BaseModel):
    id: uuid.UUID
    name: str
    email: str
    employee_number: str
    company: str
    is_admin: bool
    self_service_active: bool
    subscription: SubscriptionOut | None


async def describe(uow: UnitOfWork, employee: Employee) -> MeOut:
    """The employee and their subscription, with the catalog's names for the plan and services."""
    subscription = None
    if employee.subscription is not None:
        sub = employee.subscription
        catalog = await uow.products.catalog()

        def name(code: str) -> str:
            product = catalog.get(code)
            return product.name if product else code

        subscription = SubscriptionOut(
            msisdn=sub.msisdn,
            plan=PlanOut(code=sub.plan_code, name=name(sub.plan_code)),
            sim_cards=[
                SimCardOut(id=s.id, label=s.label, is_main=s.is_main, icc=s.icc, status=s.status)
                for s in sub.sim_cards
            ],
            active_services=[
                ActiveServiceOut(product_code=s.product_code, name=name(s.product_code)) for s in sub.services
            ],
        )
    return MeOut(
        id=employee.id,
        name=employee.name,
        email=employee.email,
        employee_number=employee.employee_number,
        company=employee.company.name,
        is_admin=employee.is_admin,
        self_service_active=employee.self_service_active,
        subscription=subscription,
    )


@router.get("/me", responses=problem_responses(ErrorCode.NOT_SIGNED_IN))
async def me(who: SignedInEmployee, uow: Uow) -> MeOut:
    return await describe(uow, await signed_in_employee(uow, who.employee_id))
