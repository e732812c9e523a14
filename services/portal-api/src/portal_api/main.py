"""portal-api: the employees' web portal and JSON API; stores orders and follows their status."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from mport_shared.http import instrument, operations_router, start_metrics_server
from mport_shared.logging import configure_logging, get_logger
from mport_shared.messaging.topology import ORDER_WORKER, PORTAL_API
from mport_shared.ops.api import ops_router
from mport_shared.service import ServiceRuntime
from mport_shared.settings import load_settings
from mport_shared.tracing import FASTAPI_TELEMETRY_OFF, configure_tracing, instrument_app
from starlette.middleware.sessions import SessionMiddleware

from portal_api.admin.pages import router as admin_pages_router
from portal_api.admin.policy_pages import router as admin_policy_pages_router
from portal_api.admin.views import router as admin_router
from portal_api.auth.oidc import OidcClient, make_client
from portal_api.auth.oidc import router as oidc_router
from portal_api.auth.sessions import Clock, purge_sessions, utc_now
from portal_api.auth.views import router as auth_router
from portal_api.catalog.views import router as catalog_router
from portal_api.intake import IntakeGate, PipelineBacklog
from portal_api.limits import BodyLimitMiddleware
from portal_api.live import LiveFeed, LiveHub
from portal_api.live import router as live_router
from portal_api.metrics import sample_orders
from portal_api.models import tables
from portal_api.orders.status import OrderStatusHandlers
from portal_api.orders.stuck import stuck_orders
from portal_api.orders.views import router as orders_router
from portal_api.pages.rendering import STATIC_DIR
from portal_api.pages.views import install_page_errors
from portal_api.pages.views import router as pages_router
from portal_api.payroll.client import PayrollWorkerClient, make_http
from portal_api.payroll.pages import router as payroll_pages_router
from portal_api.payroll.status import DeductionEventHandlers
from portal_api.payroll.views import router as payroll_router
from portal_api.problems import install_problem_handlers
from portal_api.ratelimit import install_rate_limits
from portal_api.security import SecurityHeadersMiddleware, hsts_value
from portal_api.settings import PortalSettings
from portal_api.subscriptions.views import router as subscription_router
from portal_api.unit_of_work import SqlUnitsOfWork
from portal_api.verifications.pages import router as verification_pages_router
from portal_api.verifications.purge import purge_codes_forever
from portal_api.verifications.service import CodeKeeper
from portal_api.verifications.status import VerificationStatusHandlers
from portal_api.verifications.views import router as verifications_router

SERVICE = "portal-api"
log = get_logger(__name__)


def create_app(
    settings: PortalSettings,
    *,
    oidc_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = utc_now,
) -> FastAPI:
    """The portal; `oidc_transport` lets a test put a fake identity provider behind "Bruk jobbkonto",
    and `clock` lets it move time on for the sessions' timeouts."""
    runtime = ServiceRuntime(name=SERVICE, settings=settings, tables=tables, queue=PORTAL_API)
    session_policy = settings.session_policy
    units = SqlUnitsOfWork(runtime.sessions, consumer=SERVICE)
    status = OrderStatusHandlers(units)
    runtime.handlers.update(status.handlers())
    runtime.handlers.update(VerificationStatusHandlers(units).handlers())
    runtime.handlers.update(DeductionEventHandlers(units).handlers())
    runtime.gauges.add(
        functools.partial(sample_orders, runtime.sessions), interval_s=settings.table_metrics_interval_s
    )
    payroll_http = make_http(
        base_url=settings.payroll_worker_url,
        token=settings.payroll_api_token.get_secret_value(),
        timeout_s=settings.payroll_timeout_s,
    )
    code_keeper = CodeKeeper(
        secret=settings.effective_verification_secret, rules=settings.code_rules, clock=clock
    )
    live_hub = LiveHub(max_per_employee=settings.max_event_streams_per_employee)
    live_feed = LiveFeed(hub=live_hub, units=units)
    intake_gate = IntakeGate(
        max_backlog=settings.intake_max_backlog,
        wait_s=settings.intake_wait_s,
        interval_s=settings.intake_check_interval_s,
    )
    oidc_http: httpx.AsyncClient | None = None
    oidc: OidcClient | None = None
    if not settings.is_local and not settings.oidc_configured:
        # Starts anyway (health, API for signed sessions), but say loudly why nobody can sign in.
        log.warning("production mode without OIDC_ISSUER/OIDC_CLIENT_ID: nobody can sign in")
    if settings.oidc_configured:
        oidc_http = httpx.AsyncClient(transport=oidc_transport, timeout=10.0)
        oidc = make_client(settings, oidc_http)

    if not settings.is_local and settings.metrics_port is None:
        log.warning("production mode without METRICS_PORT: /metrics is not served")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:
            if settings.metrics_port is not None:
                host = settings.metrics_host or settings.http_host
                resources.callback(start_metrics_server(host=host, port=settings.metrics_port))
                log.info("metrics served on a port of their own", host=host, port=settings.metrics_port)
            await runtime.start()
            assert runtime.connection is not None
            assert runtime.relay is not None
            backlog = PipelineBacklog(
                connection=runtime.connection,
                relay=runtime.relay,
                queues=(ORDER_WORKER, PORTAL_API),
                broker_connected=runtime.broker_ready,
            )
            intake_gate.start(backlog)
            purging = asyncio.create_task(
                purge_sessions(runtime.sessions, policy=session_policy, clock=clock), name="session-purge"
            )
            # The real clock: an outbox row's expiry is the relay's, whatever a test's clock says.
            purging_codes = asyncio.create_task(
                purge_codes_forever(runtime.sessions, clock=utc_now), name="code-purge"
            )
            try:
                assert runtime.connection is not None
                await live_feed.start(runtime.connection)
                yield
            finally:
                await intake_gate.stop()
                await backlog.close()
                for task in (purging, purging_codes):
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
                await live_feed.stop()
                if oidc_http is not None:
                    await oidc_http.aclose()
                await payroll_http.aclose()
                await runtime.stop()

    # In production the API's description is not public unless configured (SERVE_OPENAPI,
    # SERVE_API_DOCS): it maps every route for whoever is looking for a way in.
    app = FastAPI(
        title="mPort portal API",
        version="1",
        lifespan=lifespan,
        openapi_url="/openapi.json" if settings.openapi_served else None,
        docs_url="/docs" if settings.api_docs_served else None,
        redoc_url="/redoc" if settings.api_docs_served else None,
        telemetry=FASTAPI_TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.units = units
    app.state.live_hub = live_hub
    app.state.intake_gate = intake_gate
    app.state.oidc = oidc
    app.state.session_policy = session_policy
    app.state.clock = clock
    app.state.code_keeper = code_keeper
    app.state.payroll = PayrollWorkerClient(payroll_http)
    install_problem_handlers(app)
    install_page_errors(app)
    install_rate_limits(app, settings)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.effective_session_secret,
        session_cookie=settings.session_cookie,
        # The session itself ends by its record (auth/sessions.py); the cookie need not outlive it.
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=not settings.is_local,
    )
    # Added late, so outside the others: the body limit holds before sessions and CSRF checks.
    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=settings.max_json_body_bytes,
        form_limit=settings.max_form_body_bytes,
    )
    # Outermost: its headers go on every answer, the body limit's 413 included.
    app.add_middleware(
        SecurityHeadersMiddleware, hsts=None if settings.is_local else hsts_value(settings.hsts_max_age_s)
    )
    # A span per request around all of the above, so every middleware's answer is in it.
    instrument_app(app)
    for router in (
        auth_router,
        oidc_router,
        subscription_router,
        catalog_router,
        orders_router,
        verifications_router,
        live_router,
        admin_router,
        payroll_router,
        pages_router,
        verification_pages_router,
        admin_pages_router,
        payroll_pages_router,
        admin_policy_pages_router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(operations_router(runtime.readiness_checks(), metrics=settings.metrics_on_main_port))
    # Public port: without OPS_API_TOKEN these routes do not exist; with it, only the token opens them.
    app.include_router(
        ops_router(
            service=SERVICE, token=settings.ops_api_token, sessions=runtime.sessions,
            outbox=runtime.tables.outbox, stuck=stuck_orders(runtime.sessions),
        )
    )  # fmt: skip
    instrument(app)
    return app


def main() -> None:
    settings = load_settings(PortalSettings)
    configure_logging(service=SERVICE, level=settings.log_level, json=settings.log_json)
    configure_tracing(service=SERVICE)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
