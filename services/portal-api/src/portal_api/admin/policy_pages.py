"""The administrator's page Retningslinjer: the company's mobile policy as a form (who pays for
each category, the share in percent or kroner, the plan the employer covers up to, the wage types),
saved through the same use case as PUT /api/v1/admin/policy (checked, and in the audit log)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from mport_shared.events import OrderKind
from pydantic import ValidationError

from portal_api.admin.pages import _me, _refused
from portal_api.admin.policy import company_policy, replace_policy
from portal_api.catalog.policy import Payer, PolicyDocument, PolicyRule, WageKind
from portal_api.catalog.products import Catalog
from portal_api.deps import SignedInEmployee, Uow, require_csrf
from portal_api.errors import DomainError, ErrorCode
from portal_api.i18n import Translator, pick_language
from portal_api.pages.rendering import render

router = APIRouter(include_in_schema=False)

POLICY_PATH = "/admin/retningslinjer"
SAVED_PARAM = "lagret"
# What the form offers per category: the employer, the employee in full, a share, not allowed.
CHOICES = ("employer", "employee", "percent", "fixed", "not_allowed")


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryRow:
    category: str
    products: str  # the category's products, for the administrator to recognise it
    choice: str
    percent: str
    fixed_kr: str


def _choice(rule: PolicyRule | None) -> str:
    if rule is None or rule.payer is Payer.EMPLOYER:
        return "employer"
    if rule.payer is Payer.NOT_ALLOWED:
        return "not_allowed"
    if rule.employee_share_ore is not None:
        return "fixed"
    return "percent" if rule.has_percent_share else "employee"


def _kr(ore: int | None) -> str:
    return "" if ore is None else f"{ore // 100},{ore % 100:02d}"


def category_rows(policy: PolicyDocument, catalog: Catalog) -> list[CategoryRow]:
    categories: dict[str, list[str]] = {}
    for p in catalog.products:
        if p.kind is OrderKind.ADDON or p.category == "sim":
            categories.setdefault(p.category, []).append(p.name)
    rows = []
    for category, names in categories.items():
        rule = policy.rules.get(category)
        rows.append(
            CategoryRow(
                category=category,
                products=", ".join(dict.fromkeys(names)),
                choice=_choice(rule),
                percent=str(rule.employee_share_percent) if rule and rule.has_percent_share else "",
                fixed_kr=_kr(rule.employee_share_ore) if rule else "",
            )
        )
    return rows


class FormProblem(ValueError):
    def __init__(self, field: str, message_key: str) -> None:
        super().__init__(field)
        self.field, self.message_key = field, message_key


def _ore(text: str, field: str) -> int:
    cleaned = text.strip().replace(" ", "").replace(",", ".")
    try:
        kroner, _, ore = cleaned.partition(".")
        if not kroner.isdigit() or (ore and (not ore.isdigit() or len(ore) > 2)):
            raise ValueError(cleaned)
        return int(kroner) * 100 + int(ore.ljust(2, "0") or 0)
    except ValueError:
        raise FormProblem(field, "admin.policy.error.kr") from None


def policy_from_form(form: dict[str, str], current: PolicyDocument, catalog: Catalog) -> PolicyDocument:
    """The policy the form asks for: its categories' rules replaced, other rules (a product's
    own, a plan's) kept as they are."""
    rules = dict(current.rules)
    for row in category_rows(current, catalog):
        c = row.category
        choice = form.get(f"payer.{c}", row.choice)
        if choice not in CHOICES:
            raise FormProblem(f"payer.{c}", "admin.policy.error.choice")
        if choice == "employer":
            rules[c] = PolicyRule(payer=Payer.EMPLOYER)
        elif choice == "not_allowed":
            rules[c] = PolicyRule(payer=Payer.NOT_ALLOWED)
        elif choice == "employee":
            rules[c] = PolicyRule(payer=Payer.EMPLOYEE)
        elif choice == "percent":
            text = form.get(f"percent.{c}", row.percent).strip()
            if not text.isdigit() or not 0 <= int(text) <= 100:
                raise FormProblem(f"percent.{c}", "admin.policy.error.percent")
            rules[c] = PolicyRule(payer=Payer.EMPLOYEE, employee_share_percent=int(text))
        else:
            rules[c] = PolicyRule(
                payer=Payer.EMPLOYEE, employee_share_ore=_ore(form.get(f"fixed.{c}", ""), f"fixed.{c}")
            )
    ceiling = form.get("plan_covered_up_to", current.plan_covered_up_to or "") or None
    wage_types = {
        kind: form.get(f"wage_type.{kind.value}", current.wage_types.get(kind, "")).strip()
        for kind in WageKind
    }
    try:
        return PolicyDocument(rules=rules, plan_covered_up_to=ceiling, wage_types=wage_types)
    except ValidationError:
        raise FormProblem("policy", "admin.policy.error.invalid") from None


async def _page(
    request: Request,
    who: SignedInEmployee,
    uow: Uow,
    *,
    policy: PolicyDocument | None = None,
    problems: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        current = await company_policy(uow, who.employee_id)
    except DomainError as error:
        return _refused(request, error, await _me(uow, who.employee_id))
    shown = policy or current
    catalog = await uow.products.catalog()
    actor = await _me(uow, who.employee_id)
    return render(
        request,
        "admin_retningslinjer.html",
        {
            "rows": category_rows(shown, catalog),
            "plans": [p for p in catalog.products if p.kind is OrderKind.PLAN],
            "ceiling": shown.plan_covered_up_to,
            "wage_types": [(kind.value, shown.wage_types.get(kind, "")) for kind in WageKind],
            "problems": problems or [],
            "saved": request.query_params.get(SAVED_PARAM) == "1",
        },
        employee=actor,
        status_code=status_code,
    )


@router.get(POLICY_PATH)
async def policy_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    """Retningslinjer: the company's mobile policy, to read and change."""
    return await _page(request, who, uow)


@router.post(POLICY_PATH, dependencies=[Depends(require_csrf)])
async def save_policy_page(request: Request, who: SignedInEmployee, uow: Uow) -> Response:
    """Save the form; on a problem, the form again as sent, with what is wrong (422)."""
    t = Translator(pick_language(request)[0])
    form: dict[str, Any] = {k: str(v) for k, v in (await request.form()).items()}
    try:
        current = await company_policy(uow, who.employee_id)
        wanted = policy_from_form(form, current, await uow.products.catalog())
        await replace_policy(uow, actor_id=who.employee_id, policy=wanted)
    except FormProblem as problem:
        return await _page(request, who, uow, problems=[t(problem.message_key)], status_code=422)
    except DomainError as error:
        if error.code is not ErrorCode.INVALID_POLICY:
            return _refused(request, error, await _me(uow, who.employee_id))
        errors: list[dict[str, Any]] = list(error.extensions.get("errors", []))  # type: ignore[call-overload]
        lines = [f"{'.'.join(e['loc'][1:])}: {e['msg']}" for e in errors]
        return await _page(request, who, uow, policy=wanted, problems=lines, status_code=422)
    return RedirectResponse(f"{POLICY_PATH}?{SAVED_PARAM}=1", status_code=303)
