"""The administrator's API on real PostgreSQL (and the portal's RabbitMQ vhost): the employee list,
correcting a number (the subscription changes, the verification resets, the employee's sessions
end), self-service off and on, unlocking, the audit log with before and after, and the refusals:
not an administrator (403), another company's employee (404), bad input (422), no CSRF token (403)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from portal_api.admin.repositories import SqlAuditLog, SqlStaff
from portal_api.main import create_app
from portal_api.models import AuditEntry, Employee, Subscription
from portal_api.seed import DEMO_VERIFIED_AT, HAKON, INGRID, KARI, PER, SIRI
from portal_api.settings import PortalSettings
from portal_api.verification_rules import MAX_CONSECUTIVE_VERIFICATION_FAILURES
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .conftest import Portal, place_order, sign_in

pytestmark = pytest.mark.integration

PROBLEMS = "https://mport.no/problems/"
EMPLOYEES = "/api/v1/admin/employees"
AUDIT_LOG = "/api/v1/admin/audit-log"


class Signed:
    """A signed-in client and its CSRF token."""

    def __init__(self, client: httpx.AsyncClient, csrf: str) -> None:
        self.client, self.csrf = client, csrf

    async def patch(self, employee_id: uuid.UUID | str, body: Any, **headers: str) -> httpx.Response:
        return await self.client.patch(
            f"{EMPLOYEES}/{employee_id}", json=body, headers={"X-CSRF-Token": self.csrf, **headers}
        )


@pytest.fixture
async def ingrid(portal: Portal) -> AsyncIterator[Signed]:
    async with portal.client() as client:
        yield Signed(client, await sign_in(client, INGRID.email))


@pytest.fixture
async def kari(portal: Portal) -> AsyncIterator[Signed]:
    async with portal.client() as client:
        yield Signed(client, await sign_in(client, KARI.email))


async def employee_row(portal: Portal, employee_id: uuid.UUID) -> tuple[Employee, str | None]:
    async with portal.app.state.runtime.sessions() as session:
        employee = await session.get(Employee, employee_id)
        assert employee is not None
        msisdn = await session.scalar(
            select(Subscription.msisdn).where(Subscription.employee_id == employee_id)
        )
        return employee, msisdn


async def audit_rows(portal: Portal) -> list[AuditEntry]:
    async with portal.app.state.runtime.sessions() as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEMS + slug, body
    return body


async def test_the_administrator_lists_the_companys_employees_a_page_at_a_time(ingrid: Signed) -> None:
    response = await ingrid.client.get(EMPLOYEES)
    assert response.status_code == 200, response.text
    people = {p["name"]: p for p in response.json()}
    assert list(people) == ["Håkon Hafell", "Ingrid Berg", "Kari Nordmann"]  # by name; none of Fjord's
    assert people["Kari Nordmann"] == {
        "id": str(KARI.id),
        "name": "Kari Nordmann",
        "email": KARI.email,
        "employee_number": "1001",
        "is_admin": False,
        "msisdn": "4791234567",
        "plan_code": "bedrift-total-c",
        "plan_name": "Bedrift Total C (10 GB)",
        "self_service_active": True,
        "self_service_allowed": True,
        "phone_verified_at": DEMO_VERIFIED_AT.isoformat().replace("+00:00", "Z"),
        "verification_failures": 0,
        "locked": False,
    }
    hakon = people["Håkon Hafell"]
    assert (hakon["self_service_active"], hakon["phone_verified_at"], hakon["msisdn"]) == (
        False,
        None,
        HAKON.msisdn,
    )
    assert (people["Ingrid Berg"]["is_admin"], people["Ingrid Berg"]["msisdn"]) == (True, None)

    first = await ingrid.client.get(EMPLOYEES, params={"limit": 2})
    assert [p["name"] for p in first.json()] == ["Håkon Hafell", "Ingrid Berg"]
    link = first.headers["link"]
    assert link.startswith(f"<{EMPLOYEES}?limit=2&cursor=")
    assert link.endswith('>; rel="next"')
    second = await ingrid.client.get(link[1 : link.index(">")])
    assert [p["name"] for p in second.json()] == ["Kari Nordmann"]
    assert "link" not in second.headers

    cursor = link[link.index("cursor=") + 7 : link.index(">")]
    # One character of the signature changed, well inside it: the last characters of base64 also
    # carry padding bits, so a change there may decode to the very same signature.
    flipped = "A" if cursor[-5] != "A" else "B"
    tampered = cursor[:-5] + flipped + cursor[-4:]
    problem(await ingrid.client.get(EMPLOYEES, params={"cursor": tampered}), 400, "invalid-cursor")


async def test_another_companys_cursor_is_refused(portal: Portal, ingrid: Signed) -> None:
    link = (await ingrid.client.get(EMPLOYEES, params={"limit": 1})).headers["link"]
    async with portal.client() as per:
        await sign_in(per, PER.email)
        problem(await per.get(link[1 : link.index(">")]), 400, "invalid-cursor")


async def test_correcting_a_number_changes_the_subscription_resets_the_verification_and_ends_the_sessions(
    portal: Portal, ingrid: Signed, kari: Signed
) -> None:
    async with portal.client() as other_device:
        await sign_in(other_device, KARI.email)
        response = await ingrid.patch(KARI.id, {"msisdn": "+47 998 87 766"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["msisdn"], body["phone_verified_at"], body["self_service_active"]) == (
            "4799887766",
            None,
            False,
        )
        assert body["self_service_allowed"] is True

        employee, msisdn = await employee_row(portal, KARI.id)
        assert (msisdn, employee.phone_verified_at, employee.self_service_active) == (
            "4799887766",
            None,
            False,
        )
        # Every session of Kari's has ended: this browser and the other device.
        for client in (kari.client, other_device):
            refused = problem(await client.get("/api/v1/me"), 401, "not-signed-in")
            assert refused["reason"] == "ended"
    # Ingrid's own session goes on, and the change is in the audit log.
    [entry] = (await ingrid.client.get(AUDIT_LOG)).json()
    assert entry["action"] == "employee.updated"
    assert (entry["actor"], entry["subject"]) == (
        {"id": str(INGRID.id), "name": "Ingrid Berg"},
        {"id": str(KARI.id), "name": "Kari Nordmann"},
    )
    assert entry["before"] == {
        "msisdn": "4791234567",
        "self_service_active": True,
        "phone_verified_at": DEMO_VERIFIED_AT.isoformat(),
    }
    assert entry["after"] == {"msisdn": "4799887766", "self_service_active": False, "phone_verified_at": None}
    # Kari signs in again and sees the new number, not yet confirmed.
    async with portal.client() as again:
        await sign_in(again, KARI.email)
        me = (await again.get("/api/v1/me")).json()
        assert (me["subscription"]["msisdn"], me["self_service_active"]) == ("4799887766", False)


async def test_switching_self_service_off_stops_ordering_at_once_and_on_restores_it(
    portal: Portal, ingrid: Signed, kari: Signed
) -> None:
    off = await ingrid.patch(KARI.id, {"self_service_allowed": False})
    assert off.status_code == 200, off.text
    assert (off.json()["self_service_allowed"], off.json()["self_service_active"]) == (False, False)
    assert (await kari.client.get("/api/v1/me")).json()["self_service_active"] is False  # still signed in
    refused = await kari.client.post(
        "/api/v1/orders",
        json={"product_code": "nettvern"},
        headers={"X-CSRF-Token": kari.csrf, "Idempotency-Key": str(uuid.uuid4())},
    )
    problem(refused, 403, "self-service-not-activated")

    on = await ingrid.patch(KARI.id, {"self_service_allowed": True})
    assert (on.json()["self_service_allowed"], on.json()["self_service_active"]) == (True, True)
    await place_order(kari.client, kari.csrf, "nettvern")
    entries = (await ingrid.client.get(AUDIT_LOG)).json()
    assert [(e["before"], e["after"]) for e in entries] == [  # newest first
        (
            {"self_service_allowed": False, "self_service_active": False},
            {"self_service_allowed": True, "self_service_active": True},
        ),
        (
            {"self_service_allowed": True, "self_service_active": True},
            {"self_service_allowed": False, "self_service_active": False},
        ),
    ]


async def test_unlocking_after_too_many_wrong_codes(portal: Portal, ingrid: Signed) -> None:
    async with portal.app.state.runtime.sessions() as session:
        await session.execute(
            update(Employee)
            .where(Employee.id == HAKON.id)
            .values(verification_failures=MAX_CONSECUTIVE_VERIFICATION_FAILURES)
        )
        await session.commit()
    listed = {p["name"]: p for p in (await ingrid.client.get(EMPLOYEES)).json()}
    assert (listed["Håkon Hafell"]["locked"], listed["Håkon Hafell"]["verification_failures"]) == (True, 100)

    unlocked = await ingrid.patch(HAKON.id, {"unlock": True})
    assert (unlocked.json()["locked"], unlocked.json()["verification_failures"]) == (False, 0)
    assert (await employee_row(portal, HAKON.id))[0].verification_failures == 0
    [entry] = (await ingrid.client.get(AUDIT_LOG)).json()
    assert (entry["before"], entry["after"]) == ({"verification_failures": 100}, {"verification_failures": 0})
    # verification_failures: 0 says the same; unlocking the unlocked changes and logs nothing.
    again = await ingrid.patch(HAKON.id, {"verification_failures": 0})
    assert again.status_code == 200, again.text
    assert len(await audit_rows(portal)) == 1


async def test_a_number_another_employee_has_or_with_open_orders_is_refused(
    portal: Portal, ingrid: Signed, kari: Signed
) -> None:
    problem(await ingrid.patch(KARI.id, {"msisdn": HAKON.msisdn}), 409, "msisdn-taken")
    problem(await ingrid.patch(KARI.id, {"msisdn": SIRI.msisdn}), 409, "msisdn-taken")  # of any company
    problem(await ingrid.patch(INGRID.id, {"msisdn": "4799887766"}), 409, "employee-has-no-subscription")
    await place_order(kari.client, kari.csrf, "ekstra-data-1gb")  # no worker here: it stays received
    problem(await ingrid.patch(KARI.id, {"msisdn": "4799887766"}), 409, "open-orders-on-number")
    _, msisdn = await employee_row(portal, KARI.id)
    assert msisdn == KARI.msisdn
    assert (await kari.client.get("/api/v1/me")).status_code == 200  # her sessions were not ended
    assert await audit_rows(portal) == []


async def test_only_the_companys_administrators_may(portal: Portal, kari: Signed) -> None:
    for response in (
        await kari.client.get(EMPLOYEES),
        await kari.client.get(AUDIT_LOG),
        await kari.patch(HAKON.id, {"self_service_allowed": False}),
        await kari.patch(KARI.id, {"msisdn": "4799887766"}),
        await kari.patch(uuid.uuid4(), {"unlock": True}),
    ):
        problem(response, 403, "not-an-administrator")
    assert (await employee_row(portal, HAKON.id))[0].self_service_allowed is True
    async with portal.client() as anonymous:
        problem(await anonymous.get(EMPLOYEES), 401, "not-signed-in")


async def test_another_companys_administrator_finds_no_such_employee(portal: Portal) -> None:
    async with portal.client() as client:
        per = Signed(client, await sign_in(client, PER.email))
        theirs = problem(await per.patch(KARI.id, {"self_service_allowed": False}), 404, "employee-not-found")
        made_up = problem(
            await per.patch(uuid.uuid4(), {"self_service_allowed": False}), 404, "employee-not-found"
        )
        assert theirs["detail"] == made_up["detail"]
        assert str(KARI.id) not in (await client.get(EMPLOYEES)).text
        assert (await client.get(AUDIT_LOG)).json() == []
    employee, _ = await employee_row(portal, KARI.id)
    assert employee.self_service_allowed is True
    assert await audit_rows(portal) == []


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"msisdn": "abc"}, "invalid-msisdn"),
        ({"msisdn": "1234567"}, "invalid-msisdn"),
        ({"msisdn": "4" * 40}, "invalid-request"),
        ({"msisdn": None}, "invalid-request"),
        ({"msisdn": 4799887766}, "invalid-request"),
        ({"self_service_allowed": "yes"}, "invalid-request"),
        ({"unlock": False}, "invalid-request"),
        ({"verification_failures": 5}, "invalid-request"),
        ({"is_admin": True}, "invalid-request"),
        (["msisdn"], "invalid-request"),
    ],
)
async def test_bad_input_is_a_422_problem(portal: Portal, ingrid: Signed, body: Any, slug: str) -> None:
    problem(await ingrid.patch(KARI.id, body), 422, slug)
    problem(
        await ingrid.client.patch(f"{EMPLOYEES}/not-an-id", json={}, headers={"X-CSRF-Token": ingrid.csrf}),
        422,
        "invalid-request",
    )
    assert await audit_rows(portal) == []


async def test_a_merge_patch_body_is_accepted(ingrid: Signed) -> None:
    response = await ingrid.client.patch(
        f"{EMPLOYEES}/{HAKON.id}",
        content=b'{"self_service_allowed": false}',
        headers={"X-CSRF-Token": ingrid.csrf, "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["self_service_allowed"] is False


async def test_without_the_csrf_token_nothing_changes(portal: Portal, ingrid: Signed) -> None:
    problem(
        await ingrid.client.patch(f"{EMPLOYEES}/{KARI.id}", json={"self_service_allowed": False}),
        403,
        "csrf-failed",
    )
    problem(
        await ingrid.patch(KARI.id, {"self_service_allowed": False}, **{"X-CSRF-Token": "wrong"}),
        403,
        "csrf-failed",
    )
    assert (await employee_row(portal, KARI.id))[0].self_service_allowed is True
    assert await audit_rows(portal) == []


async def test_a_change_and_its_audit_entry_commit_together_or_not_at_all(
    portal: Portal, ingrid: Signed, monkeypatch: pytest.MonkeyPatch
) -> None:
    add = SqlAuditLog.add

    def broken(self: SqlAuditLog, entry: AuditEntry) -> None:
        entry.actor_employee_id = uuid.uuid4()  # no such employee: the INSERT fails at commit
        add(self, entry)

    monkeypatch.setattr(SqlAuditLog, "add", broken)
    with pytest.raises(IntegrityError):
        await ingrid.patch(KARI.id, {"msisdn": "4799887766", "self_service_allowed": False})
    employee, msisdn = await employee_row(portal, KARI.id)
    assert (msisdn, employee.self_service_allowed, employee.phone_verified_at) == (
        KARI.msisdn,
        True,
        DEMO_VERIFIED_AT,
    )
    monkeypatch.setattr(SqlAuditLog, "add", add)
    assert (await ingrid.patch(KARI.id, {"self_service_allowed": False})).status_code == 200
    assert len(await audit_rows(portal)) == 1


async def test_the_audit_log_is_newest_first_a_page_at_a_time(portal: Portal, ingrid: Signed) -> None:
    for allowed in (False, True, False):
        assert (await ingrid.patch(HAKON.id, {"self_service_allowed": allowed})).status_code == 200
    first = await ingrid.client.get(AUDIT_LOG, params={"limit": 2})
    link = first.headers["link"]
    second = await ingrid.client.get(link[1 : link.index(">")])
    entries = first.json() + second.json()
    assert [e["after"]["self_service_allowed"] for e in entries] == [False, True, False]
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert "link" not in second.headers
    async with portal.app.state.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 3


async def test_a_number_taken_by_a_change_committed_meanwhile_is_the_same_409(
    portal: Portal, ingrid: Signed, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def missed(self: SqlStaff, msisdn: str) -> None:
        return None  # the friendly check ran before the other change committed

    monkeypatch.setattr(SqlStaff, "holder_of", missed)
    problem(await ingrid.patch(KARI.id, {"msisdn": HAKON.msisdn}), 409, "msisdn-taken")
    assert (await employee_row(portal, KARI.id))[1] == KARI.msisdn
    assert await audit_rows(portal) == []


@pytest.mark.parametrize("through", ["api", "page"])
async def test_a_change_waits_for_a_code_confirmed_at_the_same_moment_and_builds_on_it(
    portal: Portal, ingrid: Signed, through: str
) -> None:
    # The page reads the employee before it changes them: the change must read them again.
    request = (
        ingrid.patch(HAKON.id, {"self_service_allowed": False})
        if through == "api"
        else ingrid.client.post(
            f"/admin/ansatte/{HAKON.id}",
            data={
                "endring": "selvbetjening",
                "selvbetjening": "av",
                "bekreftet": "1",
                "csrf_token": ingrid.csrf,
            },
        )
    )
    # Håkon's row is locked, as the verification use cases lock it to confirm a code.
    async with portal.app.state.runtime.sessions() as confirming:
        await confirming.execute(select(Employee.id).where(Employee.id == HAKON.id).with_for_update())
        switch_off = asyncio.create_task(request)
        await asyncio.sleep(0.5)
        assert not switch_off.done()  # it waits for the row, rather than acting on what it read
        await confirming.execute(
            update(Employee)
            .where(Employee.id == HAKON.id)
            .values(phone_verified_at=DEMO_VERIFIED_AT, self_service_active=True)
        )
        await confirming.commit()
    response = await switch_off
    assert response.status_code == (200 if through == "api" else 303), response.text
    employee, _ = await employee_row(portal, HAKON.id)
    assert (employee.self_service_allowed, employee.self_service_active) == (False, False)
    [entry] = await audit_rows(portal)
    assert entry.before == {"self_service_allowed": True, "self_service_active": True}


def test_the_openapi_document_describes_the_patch_as_the_validator_takes_it(tmp_path: Path) -> None:
    app = create_app(PortalSettings(PORTAL_MODE="local", database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db"))
    document = app.openapi()
    patch = document["paths"]["/api/v1/admin/employees/{employee_id}"]["patch"]
    assert set(patch["requestBody"]["content"]) == {"application/json", "application/merge-patch+json"}
    assert {"403", "404", "409", "422"} <= set(patch["responses"])
    schema = document["components"]["schemas"]["EmployeePatch"]
    assert schema["additionalProperties"] is False
    assert "null" not in json.dumps(schema["properties"])
