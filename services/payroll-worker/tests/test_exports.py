"""The export formats pinned by golden files: the same lines in any order give the same bytes.
Regenerate after a deliberate format change with UPDATE_GOLDEN=1."""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path

import pytest
from mport_shared.events import DeductionLine, DeductionLineKind
from payroll_worker import exports
from payroll_worker.domain import line_id, reversal_id

GOLDEN = Path(__file__).parent / "golden"
COMPANY = uuid.UUID("00000000-0000-4000-8000-00000000c0de")


def line(
    n: int, employee: str, wage_type: str, kind: DeductionLineKind, amount: int, text: str
) -> DeductionLine:
    order_id = uuid.UUID(int=n)
    return DeductionLine(
        line_id=line_id(order_id, kind, "2026-12")
        if kind is not DeductionLineKind.REVERSAL
        else reversal_id(order_id),
        company_id=COMPANY,
        employee_id=uuid.UUID(int=int(employee)),
        employee_number=employee,
        order_id=order_id,
        product_code="p",
        kind=kind,
        wage_type=wage_type,
        amount_ore=amount,
        period="2026-12",
        consent_id=uuid.UUID(int=n + 500),
        text=text,
    )


LINES = [
    line(1, "1001", "7100", DeductionLineKind.ONE_OFF, 4_900, "Ekstra Data 15GB 01.12.2026"),
    line(2, "1001", "7100", DeductionLineKind.ONE_OFF, 4_900, "Ekstra Data 15GB 14.12.2026"),
    line(3, "1001", "7110", DeductionLineKind.MONTHLY, 2_950, "Min Sky 12.2026"),
    line(4, "1002", "7120", DeductionLineKind.MONTHLY, 10_000, 'Bedrift Total D "mellomlegg"; 12.2026'),
    line(2, "1001", "7100", DeductionLineKind.REVERSAL, -4_900, "Tilbakeført: Ekstra Data 15GB 14.12.2026"),
    line(5, "1003", "7100", DeductionLineKind.ONE_OFF, 4_900, "Ekstra Data 15GB 03.12.2026"),
    line(5, "1003", "7100", DeductionLineKind.REVERSAL, -4_900, "Tilbakeført: Ekstra Data 15GB 03.12.2026"),
]


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_each_format_matches_its_golden_file_whatever_the_order(fmt: str) -> None:
    shuffled = LINES[:]
    random.Random(7).shuffle(shuffled)
    file = exports.export(fmt, company_id=COMPANY, period="2026-12", lines=shuffled)
    again = exports.export(fmt, company_id=COMPANY, period="2026-12", lines=LINES)
    assert file.body == again.body
    golden = GOLDEN / f"2026-12.{'json' if fmt == 'json' else fmt + '.csv'}"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_bytes(file.body)
    assert file.body == golden.read_bytes()
    assert file.filename == f"mport-lonnstrekk-{COMPANY}-2026-12" + (
        ".json" if fmt == "json" else f"-{fmt}.csv"
    )


def test_deductions_are_negative_and_summed_per_employee_and_wage_type_in_visma() -> None:
    rows = exports.to_visma(period="2026-12", lines=LINES).decode().splitlines()
    # 1001's two Ekstra Data less the reversed one; the reversed-to-nothing 1003 has no row.
    assert rows[0].split(";")[:8] == ["2026", "12", "1001", "7100", "0.00", "1.00", "0.00", "-49.00"]
    assert [r.split(";")[2] for r in rows] == ["1001", "1001", "1002"]
    assert all(len(r.split(";")) == 17 for r in rows)


def test_json_keeps_every_line_and_its_stable_id() -> None:
    document = json.loads(exports.to_json(company_id=COMPANY, period="2026-12", lines=LINES))
    assert sorted(x["id"] for x in document["lines"]) == sorted(str(x.line_id) for x in LINES)
    assert sum(x["amount_ore"] for x in document["lines"]) == sum(x.amount_ore for x in LINES)


def test_tripletex_quotes_its_text_and_names_each_line() -> None:
    rows = exports.to_tripletex(period="2026-12", lines=LINES).decode().splitlines()
    assert rows[0] == "År;Måned;Ansattnummer;Lønnsart;Kommentar;Antall;Beløp;Prosjekt;Avdeling"
    quoted = next(r for r in rows if "mellomlegg" in r)
    assert '"Bedrift Total D ""mellomlegg""; 12.2026 [' in quoted
    assert quoted.split(";")[-3] == "-100.00"
    assert len(rows) == 1 + len(LINES)
