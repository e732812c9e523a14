"""`python -m payroll_worker close|periods|export`: the operator's and the payroll team's commands,
on the worker's own database (DATABASE_URL). A close's events go to the outbox; the running
worker's relay publishes them."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import uuid
from pathlib import Path

from mport_shared.db import create_engine, session_factory
from mport_shared.logging import configure_logging
from mport_shared.settings import load_settings

from payroll_worker.exports import FORMATS, UnknownFormat
from payroll_worker.payroll import BadPeriod, Payroll, PeriodNotStarted
from payroll_worker.settings import PayrollWorkerSettings


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m payroll_worker", description="payroll-worker commands")
    commands = root.add_subparsers(dest="command", required=True)
    close = commands.add_parser("close", help="close a pay period (idempotent)")
    close.add_argument("--company", type=uuid.UUID, required=True)
    close.add_argument("--period", required=True, help="YYYY-MM")
    periods = commands.add_parser("periods", help="list a company's pay periods")
    periods.add_argument("--company", type=uuid.UUID, required=True)
    export = commands.add_parser("export", help="write a period's export file")
    export.add_argument("--company", type=uuid.UUID, required=True)
    export.add_argument("--period", required=True, help="YYYY-MM")
    export.add_argument("--format", choices=FORMATS, default="json")
    export.add_argument("--output", type=Path, help="a file (default: stdout)")
    return root


async def run(args: argparse.Namespace, settings: PayrollWorkerSettings) -> int:
    engine = create_engine(settings.database_url)
    payroll = Payroll(session_factory(engine), default_wage_type=settings.payroll_default_wage_type)
    try:
        if args.command == "close":
            result = await payroll.close(args.company, args.period)
            answer = {
                "period": result.period,
                "status": "closed",
                "closed_at": result.closed_at.isoformat(),
                "recurring_lines_generated": result.recurring_lines_generated,
            }
            print(json.dumps(answer))
        elif args.command == "periods":
            for p in await payroll.periods(args.company):
                closed = p.closed_at.isoformat() if p.closed_at else "-"
                print(f"{p.period}  {p.status:<6}  {closed:<32}  {p.lines:>4} lines  {p.total_ore:>10} øre")
        else:
            file = await payroll.export(args.company, args.period, args.format)
            if args.output:
                args.output.write_bytes(file.body)
                print(f"wrote {args.output} ({len(file.body)} bytes)", file=sys.stderr)
            else:
                sys.stdout.buffer.write(file.body)
        return 0
    except (BadPeriod, PeriodNotStarted, UnknownFormat) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(PayrollWorkerSettings)
    configure_logging(service="payroll-worker", level=settings.log_level, json=settings.log_json)
    for handler in logging.getLogger().handlers:  # stdout is the command's answer (or its file)
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    return asyncio.run(run(args, settings))
