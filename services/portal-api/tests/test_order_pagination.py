"""The order list a page at a time, on real PostgreSQL: page boundaries, a stable order when times
tie, cursors that reach no other employee's orders, bad cursors as problems, and Mine bestillinger."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from mport_shared.db import create_engine
from portal_api.models import Order
from portal_api.orders.listing import MAX_PAGE_SIZE, OrderCursors, Position
from portal_api.seed import INGRID, KARI
from sqlalchemy import update

from .conftest import Portal, sign_in
from .conftest import place_order as place
from .test_pages import Html

pytestmark = pytest.mark.integration

NEXT = re.compile(r'^<(/api/v1/orders\?[^>]+)>; rel="next"$')


async def place_many(client: httpx.AsyncClient, csrf: str, count: int) -> list[str]:
    """`count` orders of a top-up (it may be bought again and again); their ids, oldest first."""
    return [(await place(client, csrf, "ekstra-data-1gb"))["id"] for _ in range(count)]


async def all_pages(client: httpx.AsyncClient, first: str) -> list[list[dict[str, Any]]]:
    pages, url = [], first
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        link = response.headers.get("link")
        match = NEXT.match(link) if link else None
        assert link is None or match, link
        url = match.group(1) if match else ""
    return pages


async def set_times(portal: Portal, created_at: datetime) -> None:
    engine = create_engine(portal.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(Order).values(created_at=created_at))
    finally:
        await engine.dispose()


async def test_pages_hold_every_order_once_newest_first_and_the_last_has_no_next_link(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI.email)
        placed = await place_many(client, csrf, 5)
        pages = await all_pages(client, "/api/v1/orders?limit=2")
        whole = await client.get("/api/v1/orders")
        exactly_one_page = await client.get("/api/v1/orders?limit=5")
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [o["id"] for page in pages for o in page] == placed[::-1]
    assert [o["id"] for o in whole.json()] == placed[::-1]
    assert "link" not in whole.headers, "one page when everything fits"
    assert len(exactly_one_page.json()) == 5
    assert "link" not in exactly_one_page.headers, "no empty page after one that is just full"


async def test_orders_placed_at_one_moment_are_paged_in_a_stable_order_none_twice(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI.email)
        placed = await place_many(client, csrf, 7)
        await set_times(portal, datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
        first = [o["id"] for page in await all_pages(client, "/api/v1/orders?limit=3") for o in page]
        again = [o["id"] for page in await all_pages(client, "/api/v1/orders?limit=2") for o in page]
    assert sorted(first) == sorted(placed)
    assert first == again == sorted(placed, key=uuid.UUID, reverse=True)


async def test_an_order_placed_while_paging_shows_on_the_first_page_not_a_later_one(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI.email)
        placed = await place_many(client, csrf, 4)
        first = await client.get("/api/v1/orders?limit=2")
        newest = (await place(client, csrf, "ekstra-data-1gb"))["id"]
        rest = await all_pages(client, NEXT.match(first.headers["link"]).group(1))  # type: ignore[union-attr]
        again = (await client.get("/api/v1/orders?limit=2")).json()
    seen = [o["id"] for o in first.json()] + [o["id"] for page in rest for o in page]
    assert seen == placed[::-1]
    assert again[0]["id"] == newest


async def test_a_cursor_reaches_no_other_employees_orders(portal: Portal) -> None:
    async with portal.client() as kari, portal.client() as ingrid:
        csrf = await sign_in(kari, KARI.email)
        await place_many(kari, csrf, 3)
        kari_link = (await kari.get("/api/v1/orders?limit=1")).headers["link"]
        await sign_in(ingrid, INGRID.email)
        borrowed = await ingrid.get(NEXT.match(kari_link).group(1))  # type: ignore[union-attr]
        # Even a cursor properly made for Ingrid, pointing just past Kari's newest order, reads
        # only Ingrid's orders: the list is always the signed-in employee's.
        secret = portal.app.state.settings.effective_session_secret
        just_after = Position(datetime.now(UTC) + timedelta(days=1), uuid.UUID(int=2**128 - 1))
        minted = OrderCursors(secret).dump(INGRID.id, just_after)
        own_cursor = await ingrid.get("/api/v1/orders", params={"cursor": minted})
    assert borrowed.status_code == 400
    assert borrowed.headers["content-type"] == "application/problem+json"
    assert borrowed.json()["type"] == "https://mport.no/problems/invalid-cursor"
    assert "start again without one" in borrowed.json()["detail"]
    assert own_cursor.status_code == 200
    assert own_cursor.json() == []


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"cursor": "not-a-cursor"}, 400),
        ({"cursor": "WzE3NzIzNTIwMDAwMDAwMDAsIjAwIl0.forged-signature"}, 400),
        ({"cursor": "x" * 201}, 422),
        ({"limit": "0"}, 422),
        ({"limit": str(MAX_PAGE_SIZE + 1)}, 422),
        ({"limit": "many"}, 422),
    ],
)
async def test_a_bad_cursor_or_page_size_is_a_problem(
    portal: Portal, query: dict[str, str], status: int
) -> None:
    async with portal.client() as client:
        await sign_in(client, KARI.email)
        response = await client.get("/api/v1/orders", params=query)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]


async def test_mine_bestillinger_shows_a_page_and_links_to_the_older_orders(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, KARI.email)
        placed = await place_many(client, csrf, 52)
        first = Html((await client.get("/bestillinger")).text)
        older_link = [a for a in first.find("a") if a.text == "Eldre bestillinger"]
        assert len(older_link) == 1
        second_response = await client.get(older_link[0].attrs["href"])
        second = Html(second_response.text)
        bad = await client.get("/bestillinger?etter=forged")
    first_ids = [row.attrs["data-order-id"] for row in first.find("tr") if "data-order-id" in row.attrs]
    second_ids = [row.attrs["data-order-id"] for row in second.find("tr") if "data-order-id" in row.attrs]
    assert first_ids == placed[::-1][:50]
    assert second_ids == placed[::-1][50:]
    assert not [a for a in second.find("a") if a.text == "Eldre bestillinger"]
    assert [a.attrs["href"] for a in second.find("a") if a.text == "Nyeste bestillinger"] == ["/bestillinger"]
    assert second.one("section", data_older_page="")  # the page script adds no new orders here
    assert bad.status_code == 400
    assert "ikke gyldig" in Html(bad.text).text
