"""Request bodies over MAX_JSON_BODY_BYTES (64 KiB) or, for forms, MAX_FORM_BODY_BYTES (1 MiB) get
a 413 problem before they are read in full: declared ones at once, streamed ones as they pass it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from .conftest import MakePortal, Portal, sign_in

pytestmark = pytest.mark.integration

KARI = "kari.nordmann@demo.no"
JSON_LIMIT = 64 * 1024
FORM_LIMIT = 1024 * 1024
CHUNK = 4096


class Body:
    """A request body handed to the portal chunk by chunk, counting how much it took."""

    def __init__(self, size: int, *, head: bytes = b"") -> None:
        self.size = size
        self.head = head
        self.taken = 0
        self.exhausted = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.taken < self.size:
            chunk = (self.head if self.taken == 0 else b"") or b"x" * min(CHUNK, self.size - self.taken)
            self.taken += len(chunk)
            yield chunk
        self.exhausted = True


def assert_too_large(response: httpx.Response, limit_text: str) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    problem = response.json()
    assert problem["status"] == 413
    assert problem["type"] == "https://mport.no/problems/body-too-large"
    assert problem["title"] == "Request body too large"
    assert limit_text in problem["detail"]


def assert_refused_mid_stream(body: Body, limit: int) -> None:
    assert not body.exhausted
    assert limit < body.taken <= limit + CHUNK


async def order_headers(client: httpx.AsyncClient, *, signed_in: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    if signed_in:
        headers["X-CSRF-Token"] = await sign_in(client, KARI)
    return headers


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
async def test_a_json_body_declared_over_the_limit_is_refused_without_reading_it(
    portal: Portal, signed_in: bool
) -> None:
    body = Body(300 * 1024 * 1024)
    async with portal.client() as client:
        headers = await order_headers(client, signed_in=signed_in)
        response = await client.post(
            "/api/v1/orders", content=body, headers={**headers, "Content-Length": str(body.size)}
        )
    assert_too_large(response, "64 KiB (65536 bytes)")
    assert body.taken == 0


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
async def test_a_streamed_json_body_is_refused_as_soon_as_it_passes_the_limit(
    portal: Portal, signed_in: bool
) -> None:
    body = Body(300 * 1024 * 1024, head=b'{"product_code": "nettvern", "details": {"x": "')
    async with portal.client() as client:
        headers = await order_headers(client, signed_in=signed_in)
        response = await client.post("/api/v1/orders", content=body, headers=headers)
        assert "content-length" not in response.request.headers  # chunked
        if signed_in:
            assert (await client.get("/api/v1/orders")).json() == []
    assert_too_large(response, "64 KiB")
    assert_refused_mid_stream(body, JSON_LIMIT)


async def test_a_json_body_of_exactly_the_limit_is_taken(portal: Portal) -> None:
    def padded(product_code: str) -> bytes:
        order = b'{"product_code": "%s"}' % product_code.encode()
        if product_code == "ekstra-data-1gb":  # Kari pays for it: with her acceptance
            order = (
                b'{"product_code": "ekstra-data-1gb", "accept_deduction": '
                b'{"amount_ore": 2900, "text": "Dette medf\\u00f8rer l\\u00f8nnstrekk: 29,00 kr."}}'
            )
        return order[:-1] + b" " * (JSON_LIMIT - len(order)) + b"}"

    assert len(padded("nettvern")) == JSON_LIMIT
    async with portal.client() as client:
        headers = await order_headers(client, signed_in=True)
        declared = await client.post("/api/v1/orders", content=padded("nettvern"), headers=headers)
        streamed = await client.post(
            "/api/v1/orders",
            content=_chunks(padded("ekstra-data-1gb")),
            headers={**headers, "Idempotency-Key": "streamed"},
        )
    assert declared.status_code == 202, declared.text
    assert streamed.status_code == 202, streamed.text


async def test_any_other_body_has_the_json_limit_and_a_form_its_own(portal: Portal) -> None:
    over_json = b"x" * (JSON_LIMIT + 1)
    async with portal.client() as client:
        text = await client.post("/auth/logout", content=over_json, headers={"Content-Type": "text/plain"})
        untyped = await client.post("/api/v1/orders", content=over_json)
        # Over the JSON limit, but well under a form's: signs in.
        form = await client.post("/auth/dev-login", data={"email": KARI, "padding": "x" * (JSON_LIMIT * 2)})
    assert_too_large(text, "64 KiB")
    assert_too_large(untyped, "64 KiB")
    assert form.status_code == 200, form.text


def _form(size: int, *, email: str = KARI, csrf: str = "") -> bytes:
    head = f"email={email}&csrf_token={csrf}&padding=".encode()
    return head + b"x" * (size - len(head))


def _multipart_head(csrf: str) -> bytes:
    return (
        b'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        + csrf.encode()
        + b'\r\n--b\r\nContent-Disposition: form-data; name="upload"; filename="big.bin"\r\n\r\n'
    )


@pytest.mark.parametrize("path", ["/auth/logout", "/auth/dev-login"])
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
async def test_a_form_over_the_limit_to_sign_in_or_out_is_refused(
    portal: Portal, path: str, signed_in: bool
) -> None:
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    async with portal.client() as client:
        csrf = await sign_in(client, KARI) if signed_in else ""
        declared_body = Body(200 * 1024 * 1024)
        declared = await client.post(
            path, content=declared_body, headers={**multipart, "Content-Length": str(declared_body.size)}
        )
        streamed_form = Body(200 * 1024 * 1024, head=_form(CHUNK, csrf=csrf))
        streamed = await client.post(path, content=streamed_form, headers=urlencoded)
        streamed_file = Body(200 * 1024 * 1024, head=_multipart_head(csrf))
        uploaded = await client.post(path, content=streamed_file, headers=multipart)
        me = await client.get("/api/v1/me")
    for response in (declared, streamed, uploaded):
        assert_too_large(response, "1 MiB (1048576 bytes)")
    assert declared_body.taken == 0
    assert_refused_mid_stream(streamed_form, FORM_LIMIT)
    assert_refused_mid_stream(streamed_file, FORM_LIMIT)
    assert me.status_code == (200 if signed_in else 401)  # nothing signed anybody in or out


async def test_a_form_of_exactly_the_limit_signs_in(portal: Portal) -> None:
    form = _form(FORM_LIMIT)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with portal.client() as client:
        declared = await client.post("/auth/dev-login", content=form, headers=headers)
        streamed = await client.post("/auth/dev-login", content=_chunks(form), headers=headers)
    assert declared.status_code == streamed.status_code == 200, (declared.text, streamed.text)


async def test_the_limits_are_settings(make_portal: MakePortal) -> None:
    portal = await make_portal(MAX_JSON_BODY_BYTES=100, MAX_FORM_BODY_BYTES=200)
    async with portal.client() as client:
        json_body = await client.post("/api/v1/orders", content=b"x" * 101)
        form = await client.post("/auth/dev-login", content=_form(201), headers=_URLENCODED)
        small_form = await client.post("/auth/dev-login", content=_form(200), headers=_URLENCODED)
    assert_too_large(json_body, "at most 100 bytes")
    assert_too_large(form, "a form may have at most 200 bytes")
    assert small_form.status_code == 200, small_form.text


_URLENCODED = {"Content-Type": "application/x-www-form-urlencoded"}


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]
