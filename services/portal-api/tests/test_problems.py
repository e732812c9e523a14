"""Problem types: every domain error code has one (status, type URI), the OpenAPI document declares
them per route as application/problem+json (and the Idempotency-Key as required), the portal
serves the page each type URI names, and a refusal is logged with its reason."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import structlog.testing
from portal_api.errors import ErrorCode
from portal_api.main import create_app
from portal_api.problems import PROBLEM_BASE, PROBLEM_JSON, PROBLEM_TYPES
from portal_api.settings import PortalSettings

from .conftest import Portal, sign_in

# Nothing here starts the app: building the OpenAPI document and rendering a page need no
# database and no broker.
APP = create_app(PortalSettings(database_url="sqlite+aiosqlite:///:memory:", PORTAL_MODE="local"))  # type: ignore[call-arg]


def test_every_code_has_one_problem_type_with_its_own_uri() -> None:
    assert set(ErrorCode) <= set(PROBLEM_TYPES)
    uris = [kind.uri for kind in PROBLEM_TYPES.values()]
    assert len(set(uris)) == len(uris)
    assert all(uri.startswith(PROBLEM_BASE) for uri in uris)
    # 503: the one refusal that is not the client's, the payroll-worker not answering.
    assert {PROBLEM_TYPES[c].status for c in ErrorCode} <= {400, 401, 403, 404, 409, 410, 422, 423, 429, 503}


def _operation(path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = APP.openapi()["paths"][path][method]
    return operation


def _declared_types(operation: dict[str, Any], status: str) -> set[str]:
    content = operation["responses"][status]["content"]
    assert set(content) == {PROBLEM_JSON}, f"{status} is not declared as {PROBLEM_JSON}"
    assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
    return {example["value"]["type"] for example in content[PROBLEM_JSON]["examples"].values()}


def test_placing_an_order_declares_each_refusal_and_the_required_idempotency_key() -> None:
    operation = _operation("/api/v1/orders", "post")
    [key] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header"
    assert key["required"] is True
    uri = {code: PROBLEM_TYPES[code].uri for code in PROBLEM_TYPES}
    assert _declared_types(operation, "409") == {
        uri[ErrorCode.ALREADY_ORDERED],
        uri[ErrorCode.ALREADY_ACTIVE],
        uri[ErrorCode.DEDUCTION_CHANGED],
        uri[ErrorCode.SERVICE_NOT_ACTIVE],
        uri[ErrorCode.SERVICE_ALREADY_ENDING],
    } | {uri[ErrorCode.NO_SUBSCRIPTION]}
    assert {
        uri[ErrorCode.NOT_ALLOWED_BY_POLICY],
        uri[ErrorCode.SELF_SERVICE_NOT_ACTIVATED],
        uri["request.csrf-failed"],
    } == _declared_types(operation, "403")
    assert {
        uri[ErrorCode.UNKNOWN_PRODUCT],
        uri[ErrorCode.INVALID_DETAILS],
        uri[ErrorCode.INVALID_ICC],
        uri[ErrorCode.IDEMPOTENCY_KEY_REUSED],
        uri[ErrorCode.DEDUCTION_NOT_ACCEPTED],
        uri["request.invalid"],
    } == _declared_types(operation, "422")
    assert _declared_types(operation, "400") == {
        uri["request.idempotency-key-required"],
        uri["request.idempotency-key-invalid"],
    }
    assert _declared_types(operation, "401") == {uri[ErrorCode.NOT_SIGNED_IN]}
    assert _declared_types(operation, "413") == {uri["request.body-too-large"]}
    assert _declared_types(operation, "429") == {uri["request.rate-limited"]}
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert _declared_types(_operation("/api/v1/orders", "get"), "400") == {uri["request.invalid-cursor"]}
    assert _declared_types(_operation("/api/v1/events", "get"), "429") == {
        uri["request.too-many-event-streams"]
    }


def test_every_api_route_declares_its_errors_as_problems_and_none_as_fastapis_validation_error() -> None:
    document = APP.openapi()
    assert "ProblemDetails" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    api = {p: ops for p, ops in document["paths"].items() if p.startswith("/api/v1/")}
    assert api
    for path, operations in api.items():
        for method, operation in operations.items():
            errors = {s for s in operation["responses"] if s.startswith(("4", "5"))}
            assert "401" in errors, f"{method} {path} declares no 401"
            for status in errors:
                _declared_types(operation, status)


async def test_the_portal_serves_the_page_each_type_uri_names() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=APP), base_url="http://testserver"
    ) as client:
        index = await client.get("/problems")
        pages = {kind.slug: await client.get(f"/problems/{kind.slug}") for kind in PROBLEM_TYPES.values()}
        missing = await client.get("/problems/no-such-problem")
    assert index.status_code == 200
    for kind in PROBLEM_TYPES.values():
        assert f"/problems/{kind.slug}" in index.text
        page = pages[kind.slug]
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert kind.uri in page.text
        assert kind.title in page.text
    assert missing.status_code == 404


@pytest.mark.integration
async def test_a_refusal_is_logged_with_its_code_and_reason(portal: Portal) -> None:
    async with portal.client() as client:
        csrf = await sign_in(client, "kari.nordmann@demo.no")
        with structlog.testing.capture_logs() as lines:
            response = await client.post(
                "/api/v1/orders",
                json={"product_code": "datakort"},
                headers={"X-CSRF-Token": csrf, "Idempotency-Key": str(uuid.uuid4())},
            )
    assert response.status_code == 403
    [line] = [line for line in lines if line["event"] == "request refused"]
    assert line["code"] == "order.not-allowed-by-policy"
    assert line["status"] == 403
    assert line["path"] == "/api/v1/orders"
    assert line["detail"] == response.json()["detail"]
