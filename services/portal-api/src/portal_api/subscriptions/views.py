"""`GET /api/v1/me`: the signed-in employee and their subscription."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from portal_api.deps import CurrentEmployee, Db
from portal_api.models import Employee, Product

router = APIRouter(prefix="/api/v1", tags=["subscription"])


class SimCardOut(BaseModel):
    id: uuid.UUID
    label: str
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


async def describe(db: Db, employee: Employee) -> MeOut:
    subscription = None
    if employee.subscription is not None:
        sub = employee.subscription
        names = {
            p.code: p.name
            for p in [await db.get(Product, s.product_code) for s in sub.services]
            if p is not None
        }
        plan = await db.get(Product, sub.plan_code)
        subscription = SubscriptionOut(
            msisdn=sub.msisdn,
            plan=PlanOut(code=sub.plan_code, name=plan.name if plan else sub.plan_code),
            sim_cards=[SimCardOut(id=s.id, label=s.label, icc=s.icc, status=s.status) for s in sub.sim_cards],
            active_services=[
                ActiveServiceOut(product_code=s.product_code, name=names.get(s.product_code, s.product_code))
                for s in sub.services
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


@router.get("/me")
async def me(employee: CurrentEmployee, db: Db) -> MeOut:
    return await describe(db, employee)
