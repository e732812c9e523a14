"""BodyLimitMiddleware around small ASGI apps, without I/O: its 413 wins over whatever the app made
of the body it could not read, and a response already under way is never replaced."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from portal_api.limits import BodyLimitMiddleware, _BodyTooLarge
from starlette.types import Message, Receive, Scope, Send


async def read_all(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def forgiving_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body and, like FastAPI's body parsing, answers any failure to read it with a 400."""
    try:
        body = await read_all(receive)
        status, text = 200, f"read {len(body)}".encode()
    except Exception:
        status, text = 400, b"There was an error parsing the body"
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": text})


async def early_answer_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Starts its answer, then reads the body."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await read_all(receive)
    await send({"type": "http.response.body", "body": b"done"})


def client(app: object) -> httpx.AsyncClient:
    limited = BodyLimitMiddleware(app, json_limit=10, form_limit=20)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://testserver")


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_the_413_replaces_what_the_app_made_of_a_body_it_could_not_read() -> None:
    async with client(forgiving_app) as http:
        streamed = await http.post("/", content=chunks(b"12345", b"67890", b"1"))
        under = await http.post("/", content=chunks(b"12345", b"67890"))
        form = await http.post(
            "/", content=chunks(b"a" * 20), headers={"Content-Type": "Application/X-WWW-Form-Urlencoded; x=y"}
        )
        over_form = await http.post(
            "/", content=chunks(b"a" * 21), headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
    assert streamed.status_code == 413
    assert streamed.json()["detail"] == (
        "The request body is too large: this kind of request may have at most 10 bytes."
    )
    assert streamed.json()["instance"] == "/"
    assert (under.status_code, under.text) == (200, "read 10")
    assert (form.status_code, form.text) == (200, "read 20")
    assert over_form.status_code == 413
    assert "a form may have at most 20 bytes" in over_form.json()["detail"]


async def test_a_response_already_under_way_is_not_replaced() -> None:
    parts = iter([b"12345", b"67890", b"1"])
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": next(parts), "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    limited = BodyLimitMiddleware(early_answer_app, json_limit=10, form_limit=20)
    with pytest.raises(_BodyTooLarge):  # the app could not read its body and stopped
        await limited({"type": "http", "method": "POST", "path": "/", "headers": []}, receive, send)
    assert [(m["type"], m.get("status")) for m in sent] == [("http.response.start", 200)]
