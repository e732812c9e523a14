"""What the hot calls cost in round trips to real PostgreSQL: SQL statements, and the BEGIN and
COMMIT the driver sends. Placing an order is what `make bench` measures against a bare insert: no
refactor may add a round trip to it. (Before the service layer: the same three statements for a
top-up, four for an order that holds a place; reading orders took one more, the employee's. Until
the one-statement write: BEGIN, one INSERT per row and COMMIT, six round trips for a top-up where
there are now two.) The signed-in session is checked in the employee's query (the join on
web_sessions), so placing an order pays nothing for it; reading orders, which loads no employee,
pays one primary-key read of web_sessions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from .conftest import Portal, accepting, sign_in

pytestmark = pytest.mark.integration

KARI = "kari.nordmann@demo.no"
# Set only in the test's task, which the in-process client runs the app in: the outbox relay and
# the consumers run in tasks of their own, started before, so their statements are not counted.
_counting: ContextVar[bool] = ContextVar("counting", default=False)


@dataclass
class Sql:
    statements: list[str] = field(default_factory=list)
    # What the driver sends of its own around them: BEGIN, COMMIT, ROLLBACK.
    transaction_commands: list[str] = field(default_factory=list)

    @property
    def shape(self) -> list[str]:
        """Each statement as its verb and first table: "SELECT employees", "INSERT orders"; one
        that inserts into several tables (WITH … INSERT) as "INSERT consents + orders + outbox"."""
        shapes = []
        for sql in self.statements:
            inserted = re.findall(r"\bINSERT INTO\s+(\w+)", sql, re.IGNORECASE)
            if len(inserted) > 1:
                shapes.append("INSERT " + " + ".join(inserted))
                continue
            verb = sql.split()[0].upper()
            table = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", sql, re.IGNORECASE)
            shapes.append(f"{verb} {table.group(1) if table else '?'}")
        return shapes


@contextmanager
def counted(portal: Portal) -> Iterator[Sql]:
    seen = Sql()
    engine = portal.app.state.runtime.engine.sync_engine

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if _counting.get():
            seen.statements.append(sql)

    def driver_command(record: Any) -> None:
        # asyncpg reports what it sends with Connection.execute, as its transactions' BEGIN and
        # COMMIT; SQLAlchemy's statements go as prepared statements, which it does not report.
        if _counting.get():
            seen.transaction_commands.append(record.query.split()[0].rstrip(";").upper())

    logged: list[Any] = []

    def checkout(dbapi_connection: Any, *_args: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(driver_command)
        logged.append(dbapi_connection.driver_connection)

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine.pool, "checkout", checkout)
    token = _counting.set(True)
    try:
        yield seen
    finally:
        _counting.reset(token)
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine.pool, "checkout", checkout)
        for connection in logged:
            connection.remove_query_logger(driver_command)


async def order(
    client: httpx.AsyncClient, csrf: str, product_code: str, *, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(
        "/api/v1/orders",
        json=body or {"product_code": product_code, **(await accepting(client, product_code))},
        headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
    )


@pytest.mark.parametrize(
    ("product", "shape"),
    [
        # A top-up, as make bench orders: the employee (with company, policy, subscription and
        # its services, and the session, in one query), then one statement for the employee's
        # consent to the deduction, the order and its OrderPlaced event.
        ("ekstra-data-1gb", ["SELECT employees", "INSERT consents + orders + outbox"]),
        # What holds a place also asks for the order that holds it; the employer pays a Tvilling,
        # so it needs no consent.
        ("tvilling", ["SELECT employees", "SELECT orders", "INSERT orders + outbox"]),
        ("bedrift-total-e", ["SELECT employees", "SELECT orders", "INSERT consents + orders + outbox"]),
    ],
)
async def test_placing_an_order_costs_its_statements_and_no_transaction(
    portal: Portal, product: str, shape: list[str]
) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI)
        await order(client, csrf, "ekstra-data-5gb")  # the catalog is loaded once, then cached
        body = {"product_code": product, **(await accepting(client, product))}
        with counted(portal) as sql:
            response = await order(client, csrf, product, body=body)
    assert response.status_code == 202, response.text
    assert sql.shape == shape
    assert "JOIN web_sessions" in sql.statements[0]
    assert sql.transaction_commands == []  # the one write is atomic by itself


async def test_reading_orders_costs_the_sessions_primary_key_read_and_one_statement(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI)
        placed = (await order(client, csrf, "nettvern")).json()
        with counted(portal) as one:
            assert (await client.get(f"/api/v1/orders/{placed['id']}")).status_code == 200
        with counted(portal) as listed:
            assert (await client.get("/api/v1/orders")).status_code == 200
    assert one.shape == listed.shape == ["SELECT web_sessions", "SELECT orders"]
    assert one.transaction_commands == listed.transaction_commands == ["BEGIN", "ROLLBACK"]
