"""The administrator's use cases for the company's mobile policy: read it, and replace it (checked
against the catalog, with its audit entry in the same transaction). Changes apply to new orders
only: every order carries its own snapshot of the price, the employee's part and the wage type."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from mport_shared.logging import get_logger

from portal_api.admin.domain import AuditAction
from portal_api.admin.service import AdminUnitOfWork, administrator
from portal_api.catalog.policy import PolicyDocument, policy_problems
from portal_api.errors import DomainError, ErrorCode
from portal_api.models import AuditEntry

if TYPE_CHECKING:  # unit_of_work imports the admin package
    from portal_api.unit_of_work import Policies

log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class PolicyUnitOfWork(AdminUnitOfWork, Protocol):
    @property
    def policies(self) -> Policies: ...


async def company_policy(uow: PolicyUnitOfWork, actor_id: uuid.UUID) -> PolicyDocument:
    """The administrator's company's policy (another company's is never reachable: the company is
    the administrator's own)."""
    actor = await administrator(uow, actor_id)
    return await uow.policies.of(actor.company_id)


async def replace_policy(
    uow: PolicyUnitOfWork,
    *,
    actor_id: uuid.UUID,
    policy: PolicyDocument,
    clock: Callable[[], datetime] = utc_now,
) -> PolicyDocument:
    """Save the administrator's company's new policy and its audit entry (the parts changed,
    before and after) in one transaction; DomainError(admin.invalid-policy) naming each problem
    (`errors`: loc and msg) if it breaks a rule. A policy that changes nothing logs nothing."""
    async with uow:
        actor = await administrator(uow, actor_id)
        if problems := policy_problems(policy, await uow.products.catalog()):
            raise DomainError(
                ErrorCode.INVALID_POLICY,
                "The policy is not valid: " + "; ".join(f"{'.'.join(p.loc)}: {p.msg}" for p in problems),
                errors=[{"loc": ["body", *p.loc], "msg": p.msg} for p in problems],
            )
        current = await uow.policies.of(actor.company_id)
        before, after = _changed_parts(current, policy)
        if not before and not after:
            return current
        now = clock()
        await uow.policies.save(actor.company_id, policy, at=now)
        uow.audit_log.add(
            AuditEntry(
                company_id=actor.company_id,
                actor_employee_id=actor.id,
                # The policy is the company's, not one employee's: the entry's subject is the
                # administrator who changed it.
                subject_employee_id=actor.id,
                action=AuditAction.POLICY_UPDATED.value,
                before=before,
                after=after,
                at=now,
            )
        )
        await uow.commit()
    log.info("mobile policy changed by administrator", actor_employee_id=str(actor.id), parts=sorted(after))
    return policy


def _changed_parts(old: PolicyDocument, new: PolicyDocument) -> tuple[dict[str, Any], dict[str, Any]]:
    """The top-level parts (rules, plan_covered_up_to, wage_types) that differ, before and after;
    of the rules only those that changed, by product or category (None: no rule)."""
    was, now = old.model_dump(mode="json"), new.model_dump(mode="json")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for part in now:
        if was.get(part) == now[part]:
            continue
        if part == "rules":
            keys = sorted(set(was["rules"]) | set(now["rules"]))
            changed = [k for k in keys if was["rules"].get(k) != now["rules"].get(k)]
            before["rules"] = {k: was["rules"].get(k) for k in changed}
            after["rules"] = {k: now["rules"].get(k) for k in changed}
        else:
            before[part], after[part] = was.get(part), now[part]
    return before, after
