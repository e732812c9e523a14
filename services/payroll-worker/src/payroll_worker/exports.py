"""A period's deduction lines as files a payroll system imports: JSON (every line, with its stable
id), Visma Lønn's "Import variable lønnsdata" standard format and Tripletex's salary import.
Pure: the same lines give the same bytes, whatever order they come in.

In the payroll system's terms a deduction is a negative amount: a line of 49,00 kr deducted is
-49.00 in the CSV files; a reversal (a negative line here) is positive there."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from mport_shared.events import DeductionLine

FORMATS = ("json", "visma", "tripletex")


class UnknownFormat(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ExportFile:
    filename: str
    media_type: str
    body: bytes


def sort_key(line: DeductionLine) -> tuple[str, str, str, str, str]:
    return (line.employee_number, line.wage_type, line.kind.value, str(line.order_id), str(line.line_id))


def export(fmt: str, *, company_id: uuid.UUID, period: str, lines: Iterable[DeductionLine]) -> ExportFile:
    ordered = sorted(lines, key=sort_key)
    stem = f"mport-lonnstrekk-{company_id}-{period}"
    if fmt == "json":
        return ExportFile(
            f"{stem}.json", "application/json", to_json(company_id=company_id, period=period, lines=ordered)
        )
    if fmt == "visma":
        return ExportFile(
            f"{stem}-visma.csv", "text/csv; charset=utf-8", to_visma(period=period, lines=ordered)
        )
    if fmt == "tripletex":
        return ExportFile(
            f"{stem}-tripletex.csv", "text/csv; charset=utf-8", to_tripletex(period=period, lines=ordered)
        )
    raise UnknownFormat(f"{fmt!r} is not an export format (one of {', '.join(FORMATS)})")


def to_json(*, company_id: uuid.UUID, period: str, lines: list[DeductionLine]) -> bytes:
    document = {
        "company_id": str(company_id),
        "period": period,
        "lines": [
            {
                "id": str(line.line_id),
                "order_id": str(line.order_id),
                "employee_number": line.employee_number,
                "wage_type": line.wage_type,
                "kind": line.kind.value,
                "amount_ore": line.amount_ore,
                "quantity": line.quantity,
                "period": line.period,
                "text": line.text,
                "consent_id": str(line.consent_id) if line.consent_id else None,
            }
            for line in sorted(lines, key=sort_key)
        ],
    }
    return (json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def to_visma(*, period: str, lines: list[DeductionLine]) -> bytes:
    """One row per employee and wage type, summed (Visma Lønn's "Import variable lønnsdata",
    standard format): year; pay run; employee no.; wage type; basis; quantity; rate; amount;
    account; counter-account; department (R1); project (R2); R3-R6; tax deduction code.
    The pay run is the period's month; accounts 0 mean the wage type's own; tax code 0 (full)
    leaves the wage type's own tax treatment in charge."""
    year, month = period[:4], str(int(period[5:]))
    sums: dict[tuple[str, str], tuple[int, int]] = {}
    for line in lines:
        amount, quantity = sums.get((line.employee_number, line.wage_type), (0, 0))
        # A reversal takes its quantity back too: the row's quantity is the net count of charges.
        signed = -line.quantity if line.amount_ore < 0 else line.quantity
        sums[(line.employee_number, line.wage_type)] = (amount + line.amount_ore, quantity + signed)
    rows = [
        ";".join(
            [
                year,
                month,
                employee_number,
                wage_type,
                "0.00",
                f"{quantity}.00",
                "0.00",
                _kroner(-amount),
                "0",
                "0",
                *(_quoted("") for _ in range(6)),
                "0",
            ]
        )
        for (employee_number, wage_type), (amount, quantity) in sorted(sums.items())
        if amount != 0
    ]
    return "".join(row + "\r\n" for row in rows).encode()


def to_tripletex(*, period: str, lines: list[DeductionLine]) -> bytes:
    """One row per line (Tripletex's salary import): year; month; employee no.; wage type no.;
    comment; quantity; amount; project; department. The comment is the line's text and its
    stable id, so each row can be traced to its line."""
    year, month = period[:4], str(int(period[5:]))
    header = "År;Måned;Ansattnummer;Lønnsart;Kommentar;Antall;Beløp;Prosjekt;Avdeling"
    rows = [
        ";".join(
            [
                year,
                month,
                line.employee_number,
                line.wage_type,
                _quoted(f"{line.text} [{line.line_id}]"),
                f"{line.quantity}.00",
                _kroner(-line.amount_ore),
                _quoted(""),
                _quoted(""),
            ]
        )
        for line in lines
    ]
    return "".join(row + "\r\n" for row in [header, *rows]).encode()


def _kroner(ore: int) -> str:
    sign = "-" if ore < 0 else ""
    return f"{sign}{abs(ore) // 100}.{abs(ore) % 100:02d}"


def _quoted(text: str) -> str:
    # Semicolons and line breaks stay inside the quotes; a quote is doubled.
    return '"' + " ".join(text.split()).replace('"', '""') + '"'
