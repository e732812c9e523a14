"""The intake ceiling for `make bench`: a bare FastAPI endpoint that inserts one row, nothing else.

Run as its own process, like the portal: `python -m tests.bench.bare_insert` with DATABASE_URL
and HTTP_PORT. It takes the same request as `POST /api/v1/orders` (JSON body and
Idempotency-Key header) and answers 202 after one INSERT, under uvicorn with the same loop and
HTTP parser (uvicorn's defaults: uvloop and httptools when installed) and no access log.
- a plain `postgresql://` URL: through an asyncpg pool that keeps as many connections as the
  portal's SQLAlchemy pool (DATABASE_POOL_SIZE, 20);
- a `sqlite:///path` URL: through one connection as the portal has it on SQLite (aiosqlite's
  API, run on the event loop: mport_shared.db.InlineSqlite) in WAL mode with synchronous=NORMAL,
  committing each row. (On aiosqlite's own thread it answered as many per second: the load
  client is what limits it.)"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import aiosqlite
import asyncpg
import uvicorn
from fastapi import FastAPI, Header
from mport_shared.db import SQLITE_INLINE_BUSY_TIMEOUT_S, InlineSqlite
from pydantic import BaseModel, Field

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SQLITE = DATABASE_URL.startswith("sqlite:///")
_pool: list[asyncpg.Pool] = []
_sqlite: list[aiosqlite.Connection] = []


class OrderRequest(BaseModel):
    product_code: Annotated[str, Field(min_length=1, max_length=50)]


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    if SQLITE:
        db = await InlineSqlite.open(
            DATABASE_URL.removeprefix("sqlite:///"), busy_timeout_s=SQLITE_INLINE_BUSY_TIMEOUT_S
        )
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(
            "CREATE TABLE IF NOT EXISTS bare_orders (id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL,"
            " product_code TEXT NOT NULL, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        await db.commit()
        _sqlite.append(db)
        try:
            yield
        finally:
            await db.close()
        return
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=20, max_size=20)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bare_orders ("
        " id uuid PRIMARY KEY, idempotency_key varchar(200) NOT NULL,"
        " product_code varchar(50) NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )
    _pool.append(pool)
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/api/v1/orders", status_code=202)
async def create_order(
    body: OrderRequest, idempotency_key: Annotated[str, Header(alias="Idempotency-Key")]
) -> dict[str, Any]:
    order_id = uuid.uuid4()
    if SQLITE:
        db = _sqlite[0]
        await db.execute(
            "INSERT INTO bare_orders (id, idempotency_key, product_code) VALUES (?, ?, ?)",
            (str(order_id), idempotency_key, body.product_code),
        )
        await db.commit()
        return {"id": str(order_id), "status": "received", "product_code": body.product_code}
    await _pool[0].execute(
        "INSERT INTO bare_orders (id, idempotency_key, product_code) VALUES ($1, $2, $3)",
        order_id,
        idempotency_key,
        body.product_code,
    )
    return {"id": str(order_id), "status": "received", "product_code": body.product_code}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["HTTP_PORT"]), log_config=None, access_log=False)
