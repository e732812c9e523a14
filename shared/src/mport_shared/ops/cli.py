"""`mport-ops`: the operator's command for queues, dead letters, outboxes and stuck orders."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiormq
import httpx

from mport_shared.messaging.connection import BrokerAddressError
from mport_shared.messaging.topology import EXTERNAL_QUEUES, SERVICE_QUEUES, ServiceQueue
from mport_shared.ops import dead_letters as dl
from mport_shared.ops.broker import queue_figures
from mport_shared.ops.redact import redact
from mport_shared.ops.services import SERVICES, STUCK_SERVICES, OpsError, ask, endpoints

EXIT_CODES = """exit codes:
  0  done
  1  failed, or nothing matched what was asked for (an --id, a --group-id)
  2  bad usage or configuration (unknown service, bad time, no token)
  3  the broker, its management API or a service does not answer"""

ENVIRONMENT = """environment:
  AMQP_URL          the broker (default amqp://guest:guest@127.0.0.1:5672/), its vhost included
  RABBITMQ_API_URL  the management API (default http://127.0.0.1:15672/api)
  OPS_API_TOKEN     the services' /ops bearer token (make run writes it to MPORT_VAR_DIR/ops.json)
  MPORT_OPS_URLS    service URLs, e.g. portal-api=http://portal:8000,order-worker=http://ow:8091
  MPORT_OPS_FILE    the file make run writes (default MPORT_VAR_DIR/ops.json, i.e. var/ops.json)"""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
ALL_QUEUES: tuple[ServiceQueue, ...] = (*SERVICE_QUEUES, *EXTERNAL_QUEUES)


# ---- parsing --------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `1d`, `1w`."""
    found = _DURATION.match(text)
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m, 2h or 1d")
    return timedelta(seconds=float(found[1]) * _UNITS[found[2]])


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when it has no offset) or a duration ago (`2h`: two hours ago)."""
    if _DURATION.match(text):
        return (now or datetime.now(UTC)) - parse_duration(text)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO 8601 time (2026-05-01T13:00:00Z) nor a duration ago (2h)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def service_queue(name: str) -> ServiceQueue:
    for queue in ALL_QUEUES:
        if queue.name == name:
            return queue
    names = ", ".join(q.name for q in ALL_QUEUES)
    raise OpsError(f"unknown service {name!r}; one of: {names}", exit_code=2)


def _where(amqp_url: str) -> str:
    """The broker's address without its credentials, for messages."""
    parts = urlsplit(amqp_url.split(",")[0])
    return f"{parts.hostname or '?'}:{parts.port or 5672}{parts.path or '/'}"


# ---- output ---------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], out: TextIO) -> None:
    # The last column (a reason) is never cut; the others are, at 90 characters.
    cells = [[_cell(v, cut=i < len(header) - 1) for i, v in enumerate(row)] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(), file=out)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _cell(value: Any, *, cut: bool = True) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    return text if len(text) <= 90 or not cut else text[:89] + "…"


def _short_time(value: str | None) -> str | None:
    return value[:19].replace("T", " ") if value else None


def _emit_json(value: Any, out: TextIO) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str), file=out)


# ---- commands -------------------------------------------------------------------------------


class Context:
    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.stdin = stdin
        self.amqp_url: str = args.amqp_url or os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
        self.api_url: str = args.api_url or os.environ.get("RABBITMQ_API_URL", "http://127.0.0.1:15672/api")

    def services(self) -> list[ServiceQueue]:
        name = getattr(self.args, "service", None)
        return [service_queue(name)] if name else list(ALL_QUEUES)

    def broker(self, coroutine: Any) -> Any:
        try:
            return asyncio.run(coroutine)
        except BrokerAddressError as exc:
            raise OpsError(f"AMQP_URL: {exc}", exit_code=2) from None
        except aiormq.exceptions.ChannelAccessRefused as exc:
            raise OpsError(
                f"the broker at {_where(self.amqp_url)} refused access ({exc})", exit_code=3
            ) from None
        except (OSError, aiormq.exceptions.AMQPError) as exc:
            raise OpsError(
                f"no connection to the broker at {_where(self.amqp_url)} ({type(exc).__name__}): is it "
                "running, and are the user, password and vhost in AMQP_URL right?",
                exit_code=3,
            ) from None


def cmd_queues(ctx: Context) -> int:
    try:
        rows = queue_figures(ctx.api_url, ctx.amqp_url)
    except BrokerAddressError as exc:
        raise OpsError(f"AMQP_URL: {exc}", exit_code=2) from None
    except httpx.HTTPStatusError as exc:
        raise OpsError(
            f"the management API at {ctx.api_url} answered {exc.response.status_code}", exit_code=3
        ) from None
    except httpx.HTTPError as exc:
        raise OpsError(
            f"the management API at {ctx.api_url} does not answer ({type(exc).__name__})", exit_code=3
        ) from None
    if ctx.args.json:
        _emit_json(rows, ctx.out)
        return 0
    table(
        [
            [
                r["queue"],
                r["type"],
                r["ready"],
                r["unacked"],
                r["consumers"],
                r["publish_rate"],
                r["deliver_rate"],
            ]
            for r in rows
        ],
        ["QUEUE", "TYPE", "READY", "UNACKED", "CONSUMERS", "IN/S", "OUT/S"],
        ctx.out,
    )
    return 0


def _selection(ctx: Context) -> dl.Selection:
    args = ctx.args
    if not (args.ids or args.group_ids or args.since or args.until or args.all):
        raise OpsError("say which dead letters: --id, --group-id, --since/--until, or --all", exit_code=2)
    if args.all and (args.ids or args.group_ids or args.since or args.until):
        raise OpsError("--all goes alone (without --id, --group-id, --since or --until)", exit_code=2)
    return dl.Selection(
        ids=frozenset(args.ids) if args.ids else None,
        group_ids=frozenset(g.lower() for g in args.group_ids) if args.group_ids else None,
        since=args.since,
        until=args.until,
    )


def _missing(ctx: Context, found: Sequence[dl.DeadLetter]) -> str | None:
    """What was asked for by id or group id and is not there, in words; None when all was found."""
    args = ctx.args
    missing: list[str] = []
    if args.ids:
        missing += [f"id {i}" for i in args.ids if i not in {f.message_id for f in found}]
    if args.group_ids:
        missing += [f"group {g}" for g in args.group_ids if g.lower() not in {f.group_id for f in found}]
    return ", ".join(missing) or None


def cmd_dlq_list(ctx: Context) -> int:
    letters = ctx.broker(dl.dead_letters(ctx.amqp_url, ctx.services()))
    if ctx.args.group:
        groups = dl.group(letters)
        if ctx.args.json:
            _emit_json([g.summary() for g in groups], ctx.out)
            return 0
        table(
            [
                [
                    g.group_id,
                    g.count,
                    g.event_type,
                    ",".join(g.services),
                    g.first_failure,
                    g.last_failure,
                    g.reason,
                ]
                for g in groups
            ],
            [
                "GROUP",
                "COUNT",
                "EVENT TYPE",
                "SERVICES",
                "FIRST FAILURE (UTC)",
                "LAST FAILURE (UTC)",
                "REASON",
            ],
            ctx.out,
        )
        print(f"{len(letters)} dead letter(s) in {len(groups)} group(s)", file=ctx.out)
        return 0
    if ctx.args.json:
        _emit_json([letter.summary() for letter in letters], ctx.out)
        return 0
    table(
        [
            [
                x.service,
                x.event_type,
                x.message_id,
                x.correlation_id,
                x.attempts,
                x.first_failure,
                x.last_failure,
                x.group_id,
                x.reason,
            ]
            for x in letters
        ],
        [
            "SERVICE",
            "EVENT TYPE",
            "MESSAGE ID",
            "CORRELATION ID",
            "ATTEMPTS",
            "FIRST FAILURE (UTC)",
            "LAST FAILURE (UTC)",
            "GROUP",
            "REASON",
        ],
        ctx.out,
    )
    print(f"{len(letters)} dead letter(s)", file=ctx.out)
    return 0


def cmd_dlq_show(ctx: Context) -> int:
    wanted = dl.Selection(ids=frozenset({ctx.args.id}))
    letters = ctx.broker(dl.dead_letters(ctx.amqp_url, ctx.services(), wanted))
    if not letters:
        raise OpsError(f"no dead letter with message id {ctx.args.id}")
    shown = []
    for letter in letters:
        try:
            body: Any = redact(json.loads(letter.body))
        except ValueError:
            body = f"({len(letter.body)} bytes, not JSON: not shown)"
        headers = redact({k: _plain(v) for k, v in letter.headers.items()})
        shown.append(
            {**letter.summary(), "content_type": letter.content_type, "headers": headers, "body": body}
        )
    if ctx.args.json:
        _emit_json(shown if len(shown) > 1 else shown[0], ctx.out)
        return 0
    for item in shown:
        for key in (
            "service",
            "event_type",
            "message_id",
            "correlation_id",
            "reason",
            "attempts",
            "first_failure",
            "last_failure",
            "dead_lettered_by",
            "group_id",
            "content_type",
        ):
            print(f"{key.replace('_', ' '):>17}: {item[key] if item[key] is not None else '-'}", file=ctx.out)
        print("          headers:", file=ctx.out)
        print(_indent(json.dumps(item["headers"], indent=2, sort_keys=True, default=str)), file=ctx.out)
        print("             body:", file=ctx.out)
        print(_indent(json.dumps(item["body"], indent=2, ensure_ascii=False, default=str)), file=ctx.out)
    if len(shown) > 1:
        print(f"({len(shown)} copies of this message are dead letters)", file=ctx.out)
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def cmd_dlq_replay(ctx: Context) -> int:
    select = _selection(ctx)
    if ctx.args.rate is not None and ctx.args.rate <= 0:
        raise OpsError("--rate must be above 0 (messages per second)", exit_code=2)
    missing = None
    if ctx.args.ids or ctx.args.group_ids:
        # Said up front, before anything moves: the ids or groups that are not there.
        present = ctx.broker(dl.dead_letters(ctx.amqp_url, ctx.services(), select))
        if (missing := _missing(ctx, present)) is not None and not present:
            raise OpsError(f"no dead letter matches: {missing}")
    try:
        done = ctx.broker(
            dl.replay(ctx.amqp_url, ctx.services(), select, batch=ctx.args.batch, rate=ctx.args.rate)
        )
    except dl.ReplayFailed as exc:
        raise OpsError(f"replay stopped: {exc}; run it again to finish (a copy twice is absorbed)") from None
    code = _report(ctx, "replayed", done, nothing_is_error=bool(ctx.args.ids or ctx.args.group_ids))
    return _partly(ctx, missing) or code


def _partly(ctx: Context, missing: str | None) -> int:
    """Some of what was asked for by id was not there: said, and exit code 1."""
    if missing is None:
        return 0
    print(f"mport-ops: error: not found: {missing}", file=ctx.err)
    return 1


def cmd_dlq_purge(ctx: Context) -> int:
    select = _selection(ctx)
    found = ctx.broker(dl.dead_letters(ctx.amqp_url, ctx.services(), select))
    if not found:
        return _report(ctx, "purged", 0, nothing_is_error=bool(ctx.args.ids or ctx.args.group_ids))
    if not ctx.args.yes:
        if not ctx.stdin.isatty():
            raise OpsError(
                f"{len(found)} dead letter(s) would be deleted; confirm on a terminal, or pass --yes",
                exit_code=2,
            )
        queues = ", ".join(sorted({f"{f.service}.dead-letter" for f in found}))
        print(
            f"Delete {len(found)} dead letter(s) from {queues}? This cannot be undone. [y/N] ",
            end="",
            file=ctx.err,
            flush=True,
        )
        if ctx.stdin.readline().strip().lower() not in ("y", "yes"):
            print("Nothing deleted.", file=ctx.err)
            return 1
    # Only what was counted and confirmed: a dead letter arriving meanwhile stays.
    counted = frozenset(f.message_id for f in found)
    done = ctx.broker(
        dl.purge(
            ctx.amqp_url,
            ctx.services(),
            lambda x: select(x) and x.message_id in counted,
            batch=ctx.args.batch,
        )
    )
    code = _report(ctx, "purged", done, nothing_is_error=False)
    return _partly(ctx, _missing(ctx, found)) or code


def _report(ctx: Context, verb: str, done: int, *, nothing_is_error: bool) -> int:
    if ctx.args.json:
        _emit_json({verb: done}, ctx.out)
    else:
        print(f"{done} dead letter(s) {verb}", file=ctx.out)
    if done == 0 and nothing_is_error:
        print(f"mport-ops: nothing matched: {_missing(ctx, []) or 'the selection'}", file=ctx.err)
        return 1
    return 0


def cmd_outbox(ctx: Context) -> int:
    ends = endpoints(os.environ, ctx.args.url or ())
    rows, failures, code = _gather(ctx, SERVICES, lambda s: ask(ends, s, "/ops/outbox"))
    if ctx.args.json:
        _emit_json({"services": rows, "errors": failures}, ctx.out)
    else:
        table(
            [
                [r["service"], r["backlog"], r["oldest_age_s"], _short_time(r["oldest_unsent_at"])]
                for r in rows
            ],
            ["SERVICE", "BACKLOG", "OLDEST AGE (S)", "OLDEST UNSENT (UTC)"],
            ctx.out,
        )
    return code


def cmd_stuck(ctx: Context) -> int:
    ends = endpoints(os.environ, ctx.args.url or ())
    params = {"older_than_s": ctx.args.older_than.total_seconds(), "limit": ctx.args.limit}
    rows, failures, code = _gather(ctx, STUCK_SERVICES, lambda s: ask(ends, s, "/ops/stuck-orders", params))
    if ctx.args.json:
        _emit_json({"services": rows, "errors": failures}, ctx.out)
        return code
    by_service = {r["service"]: r for r in rows}
    if "portal-api" in by_service:
        answer = by_service["portal-api"]
        print(
            f"portal-api: {answer['total']} order(s) received or submitted, unchanged for over "
            f"{ctx.args.older_than}",
            file=ctx.out,
        )
        table(
            [
                [
                    o["order_id"],
                    o["status"],
                    o["kind"],
                    o["product_code"],
                    o["carrier_state"],
                    _short_time(o["updated_at"]),
                    o["age_s"],
                ]
                for o in answer["orders"]
            ],
            ["ORDER", "STATUS", "KIND", "PRODUCT", "CARRIER STATE", "SINCE (UTC)", "AGE (S)"],
            ctx.out,
        )
    if "order-worker" in by_service:
        answer = by_service["order-worker"]
        print(
            f"\norder-worker: {answer['total']} carrier order(s) past their deadline or open for over "
            f"{ctx.args.older_than}",
            file=ctx.out,
        )
        table(
            [
                [
                    o["order_id"],
                    o["why"],
                    o["phase"],
                    o["carrier_state"],
                    o["attempts"],
                    _short_time(o["deadline_at"]),
                    o["age_s"],
                ]
                for o in answer["orders"]
            ],
            ["ORDER", "WHY", "PHASE", "CARRIER STATE", "ATTEMPTS", "DEADLINE (UTC)", "AGE (S)"],
            ctx.out,
        )
    return code


def _gather(
    ctx: Context, services: Sequence[str], call: Callable[[str], dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, str], int]:
    """Ask each service; one that fails is reported and the others are still shown. Returns the
    answers, the failures and the exit code (the worst failure's)."""
    wanted = [ctx.args.service] if getattr(ctx.args, "service", None) else list(services)
    for name in wanted:
        if name not in services:
            raise OpsError(f"unknown service {name!r} here; one of: {', '.join(services)}", exit_code=2)
    rows: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    code = 0
    for name in wanted:
        try:
            rows.append({"service": name, **call(name)})
        except OpsError as exc:
            if exc.exit_code == 2:
                raise
            failures[name] = str(exc)
            code = max(code, exc.exit_code)
            print(f"mport-ops: error: {exc}", file=ctx.err)
    return rows, failures, code


# ---- the parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    def options(*, top: bool) -> argparse.ArgumentParser:
        # Before or after the command; a command's own default must not undo what came before it.
        given = argparse.ArgumentParser(add_help=False)
        default: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
        given.add_argument(
            "--json",
            action="store_true",
            help="print JSON instead of a table (for scripts)",
            **({"default": False} if top else default),
        )
        given.add_argument("--amqp-url", help="the broker (default: AMQP_URL)", **default)
        given.add_argument(
            "--api-url", help="RabbitMQ's management API (default: RABBITMQ_API_URL)", **default
        )
        return given

    common = options(top=False)
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="mport-ops",
        formatter_class=fmt,
        parents=[options(top=True)],
        description="See what flows through mPort's queues, why a message failed, put failed "
        "messages back safely, and find stuck orders.",
        epilog=f"{ENVIRONMENT}\n\n{EXIT_CODES}",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub = commands.add_parser(
        "queues",
        parents=[common],
        formatter_class=fmt,
        help="every queue: ready, unacked, consumers, publish and deliver rates",
        description="Every queue of the vhost (management API): messages ready, "
        "unacked, consumers, and publish (in) and deliver (out) rates per second.",
        epilog=EXIT_CODES,
    )
    sub.set_defaults(run=cmd_queues)

    dlq = commands.add_parser(
        "dlq",
        help="dead letters: list, show, replay, purge",
        description="Messages a service gave up on (its <service>.dead-letter queue).",
    )
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    services_help = f"one service's dead letters (default: all): {', '.join(q.name for q in ALL_QUEUES)}"

    sub = dlq_commands.add_parser(
        "list",
        parents=[common],
        formatter_class=fmt,
        help="each dead letter with its reason, attempts, first and last failure",
        description="Each dead letter: service, event type, message id, correlation "
        "id, attempts, first and last failure, group and reason. The reason is the "
        "consumer's (the exception it gave up on), or RabbitMQ's own in words "
        "(e.g. the delivery limit: the worker died each time it handled it). "
        "Nothing is removed.",
        epilog=EXIT_CODES,
    )
    sub.add_argument("service", nargs="?", help=services_help)
    sub.add_argument(
        "--group",
        action="store_true",
        help="group by (reason, event type) with counts; each group has a short id that "
        "replay and purge take (--group-id)",
    )
    sub.set_defaults(run=cmd_dlq_list)

    sub = dlq_commands.add_parser(
        "show",
        parents=[common],
        formatter_class=fmt,
        help="one dead letter's headers and body (secrets redacted)",
        description="A dead letter's headers and body, pretty-printed. Secrets and "
        "one-time codes (code, password, token, secret, authorization, …) are "
        "shown as «redacted».",
        epilog=EXIT_CODES,
    )
    sub.add_argument("id", help="the message id (dlq list shows it)")
    sub.add_argument("--service", help=services_help)
    sub.set_defaults(run=cmd_dlq_show)

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("service", nargs="?", help=services_help)
        p.add_argument(
            "--id", action="append", dest="ids", metavar="MESSAGE_ID", help="a message id (repeatable)"
        )
        p.add_argument(
            "--group-id",
            action="append",
            dest="group_ids",
            metavar="GROUP",
            help="a group id from `dlq list --group` (repeatable)",
        )
        p.add_argument(
            "--since",
            type=parse_when,
            metavar="WHEN",
            help="last failure at or after WHEN: ISO 8601 (2026-05-01T13:00Z) or a duration ago (2h)",
        )
        p.add_argument("--until", type=parse_when, metavar="WHEN", help="last failure at or before WHEN")
        p.add_argument("--all", action="store_true", help="every dead letter (of SERVICE, or of all)")
        p.add_argument(
            "--batch",
            type=int,
            default=100,
            metavar="N",
            help="messages taken from the dead-letter queue at a time (default 100)",
        )

    sub = dlq_commands.add_parser(
        "replay",
        parents=[common],
        formatter_class=fmt,
        help="put dead letters back on their work queue, with a fresh set of retries",
        description="Put the selected dead letters back on their service's work "
        "queue, each with its message id, correlation id and body unchanged and its "
        "retry headers reset (a fresh set of retries). Works in batches: a batch is "
        "published with publisher confirms, and each message leaves the dead-letter "
        "queue only once its copy is confirmed on the work queue. So a replay that "
        "dies half-way loses nothing; run it again to finish. A message whose copy "
        "was confirmed just before the death may reach the work queue twice: the "
        "consumer's inbox drops the second copy (same message id), so it is handled "
        "once.",
        epilog=f"examples:\n  mport-ops dlq replay --group-id 3f2a9c1e\n"
        "  mport-ops dlq replay order-worker --since 2h --rate 20\n"
        f"  mport-ops dlq replay --id 6b1f…\n\n{EXIT_CODES}",
    )
    selection(sub)
    sub.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="MSGS_PER_S",
        help="at most this many messages per second (default: as fast as confirmed)",
    )
    sub.set_defaults(run=cmd_dlq_replay)

    sub = dlq_commands.add_parser(
        "purge",
        parents=[common],
        formatter_class=fmt,
        help="delete dead letters (asks first)",
        description="Delete the selected dead letters for good. Shows how many and "
        "asks first; --yes skips the question. Without a terminal it refuses unless "
        "--yes is given. Only the messages counted are deleted.",
        epilog=EXIT_CODES,
    )
    selection(sub)
    sub.add_argument("--yes", action="store_true", help="do not ask")
    sub.set_defaults(run=cmd_dlq_purge)

    url_help = "a service's URL, NAME=http://host:port (repeatable; default: make run's, see MPORT_OPS_URLS)"
    sub = commands.add_parser(
        "outbox",
        parents=[common],
        formatter_class=fmt,
        help="each service's outbox: rows waiting to be published, and the oldest's age",
        description="Asks each service (GET /ops/outbox, bearer OPS_API_TOKEN) how many "
        "of its outbox rows wait to be published and how old the oldest is. A growing "
        "age means the service cannot publish (the broker is away).",
        epilog=f"{ENVIRONMENT}\n\n{EXIT_CODES}",
    )
    sub.add_argument("service", nargs="?", help=f"one of {', '.join(SERVICES)} (default: all)")
    sub.add_argument("--url", action="append", metavar="NAME=URL", help=url_help)
    sub.set_defaults(run=cmd_outbox)

    sub = commands.add_parser(
        "stuck",
        parents=[common],
        formatter_class=fmt,
        help="orders received/submitted too long, carrier orders past their deadline",
        description="Asks the portal-api (GET /ops/stuck-orders) for orders still "
        "received or submitted with no change for longer than --older-than, and the "
        "order-worker for carrier orders past their deadline or open that long. Each "
        "service answers from its own tables.",
        epilog=f"{ENVIRONMENT}\n\n{EXIT_CODES}",
    )
    sub.add_argument("service", nargs="?", help=f"one of {', '.join(STUCK_SERVICES)} (default: both)")
    sub.add_argument(
        "--older-than",
        type=parse_duration,
        default=timedelta(minutes=15),
        metavar="DURATION",
        help="how long is too long (default 15m; 90s, 2h, 1d …)",
    )
    sub.add_argument("--limit", type=int, default=100, help="at most this many per service (default 100)")
    sub.add_argument("--url", action="append", metavar="NAME=URL", help=url_help)
    sub.set_defaults(run=cmd_stuck)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    args = build_parser().parse_args(argv)
    if getattr(args, "batch", 1) < 1:
        print("mport-ops: error: --batch must be at least 1", file=err)
        return 2
    try:
        code: int = args.run(Context(args, out, err, stdin))
    except OpsError as exc:
        print(f"mport-ops: error: {exc}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mport-ops: interrupted", file=err)
        return 130
    return code


def console() -> None:
    """The `mport-ops` console script."""
    # The AMQP client logs its connection failures itself; we say them once, in our words.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    sys.exit(main())
