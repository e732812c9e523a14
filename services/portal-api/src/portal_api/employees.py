"""Queries about the signed-in employee, for the views that show them."""

from __future__ import annotations

import uuid

from portal_api.errors import NotSignedIn
from portal_api.models import Employee
from portal_api.unit_of_work import UnitOfWork


async def signed_in_employee(uow: UnitOfWork, employee_id: uuid.UUID) -> Employee:
    """The employee with their company, subscription, active services and SIM cards."""
    employee = await uow.employees.get(employee_id)
    if employee is None:  # the session outlived the employee's record
        raise NotSignedIn()
    return employee
