"""Pay periods and deduction sums: pure, no I/O. A pay period is a calendar month in Oslo time,
written YYYY-MM; sums are integer øre (a reversal's negative amount takes its line back)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal_api.models import Deduction

try:
    OSLO: tzinfo = ZoneInfo("Europe/Oslo")
except ZoneInfoNotFoundError:  # a slim image without tzdata: UTC rather than fail (as pages.views)
    OSLO = UTC
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# Wide enough for any payroll, narrow enough that a typo (0202-12) is refused.
FIRST_YEAR, LAST_YEAR = 2000, 2999


class ExportFormat(StrEnum):
    JSON = "json"
    VISMA = "visma"
    TRIPLETEX = "tripletex"


def valid_period(value: str) -> bool:
    """Whether `value` names a pay period: YYYY-MM, month 01 to 12, a year of this millennium."""
    match = _PERIOD.match(value)
    return match is not None and FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR


def period_of(moment: datetime) -> str:
    """The pay period a moment falls in (the month in Oslo)."""
    return moment.astimezone(OSLO).strftime("%Y-%m")


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodLines:
    """One period's lines (by when they were recorded) and their sum."""

    period: str
    lines: list[Deduction]
    total_ore: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EmployeeTotal:
    """One employee's lines in a period and their sum, for the administrator."""

    employee_id: uuid.UUID
    employee_number: str
    name: str | None  # None: the line names nobody on file in the portal
    lines: list[Deduction]
    total_ore: int


def _in_order(lines: Iterable[Deduction]) -> list[Deduction]:
    return sorted(lines, key=lambda d: (d.recorded_at, str(d.line_id)))


def by_period(lines: Iterable[Deduction]) -> list[PeriodLines]:
    """The lines grouped by period, newest period first, each with its sum."""
    groups: dict[str, list[Deduction]] = {}
    for line in lines:
        groups.setdefault(line.period, []).append(line)
    return [
        PeriodLines(period=p, lines=_in_order(g), total_ore=sum(d.amount_ore for d in g))
        for p, g in sorted(groups.items(), reverse=True)
    ]


def by_employee(lines: Iterable[Deduction], names: dict[uuid.UUID, str]) -> list[EmployeeTotal]:
    """One period's lines grouped by employee (by employee number), each with its sum."""
    groups: dict[uuid.UUID, list[Deduction]] = {}
    for line in lines:
        groups.setdefault(line.employee_id, []).append(line)
    totals = [
        EmployeeTotal(
            employee_id=employee_id,
            employee_number=g[0].employee_number,
            name=names.get(employee_id),
            lines=_in_order(g),
            total_ore=sum(d.amount_ore for d in g),
        )
        for employee_id, g in groups.items()
    ]
    return sorted(totals, key=lambda e: (e.employee_number, str(e.employee_id)))
