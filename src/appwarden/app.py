"""The FastAPI application factory: composes every capability's router."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appwarden import __version__, logs, wiring
from appwarden.config import Settings, get_settings
from appwarden.db.session import Database, get_database
from appwarden.web import api_docs, problems
from appwarden.web.auth_first import AuthFirst
from appwarden.web.body_limit import BodyLimit
from appwarden.web.deps import check_admin_key
from appwarden.web.login_throttle import LoginThrottle
from appwarden.web.request_log import RequestLog


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Each worker runs the monitor's background run while it serves (when ``monitor_background``)."""
    monitor = app.state.monitor
    if app.state.settings.monitor_background:
        monitor.start()
    try:
        yield
    finally:
        monitor.stop()


class WorkerPid:
    """``X-Worker-Pid`` on every response: which process of ``serve --workers N`` answered. Only when
    ``worker_pid_header`` is set (``bench/kill_switch.py`` sets it to see that every worker refuses a
    killed app): in production it would disclose the workers' PIDs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        pid = str(os.getpid()).encode()  # read per call: the app object may be built before a fork

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-worker-pid", pid)]
            await send(message)

        await self.app(scope, receive, send_with_pid)


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """Build the ASGI app for ``settings`` (the process settings by default)."""
    settings = settings or get_settings()
    wiring.wire()  # before any request can write a customer (canary issuance at consent does)
    app = FastAPI(
        title="appwarden",
        version=__version__,
        description="Data API for marketplace apps, OAuth 2.0 server and the security team's admin API.",
        lifespan=_lifespan,
        docs_url=None,  # served by web.api_docs from vendored assets: no CDN, works offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db or get_database(settings)
    app.state.login_throttle = LoginThrottle(settings)
    from appwarden.monitor.runtime import Monitor

    app.state.monitor = Monitor(settings, app.state.db)  # a bad policy file stops start-up here
    logs.ensure_configured()
    problems.install(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.master_key.decode(),
        session_cookie="appwarden_session",
        same_site="lax",
        https_only=settings.base_url.startswith("https"),
        max_age=3600,
    )
    if settings.worker_pid_header:
        app.add_middleware(WorkerPid)
    # Every body is capped while it streams in; the upload gets its own cap plus 64 KiB of multipart framing.
    app.add_middleware(
        BodyLimit,
        default=settings.request_body_max_bytes,
        overrides={
            "/admin/attributions": settings.attribution_upload_max_bytes + (64 << 10),
            "/console/security/attributions": settings.attribution_upload_max_bytes + (64 << 10),
            "/vendor/evidence": settings.evidence_max_bytes,
            "/console/vendor/evidence": settings.evidence_max_bytes + (64 << 10),
        },
    )
    # Credentials are checked before any body is read (web.auth_first); only RequestLog is outside it.
    from appwarden.broker.auth import check_access_token
    from appwarden.canary.api import check_webhook_key
    from appwarden.marketplace.vendors import check_password_login, check_vendor_key
    from appwarden.screening.api import check_staff_key

    app.add_middleware(
        AuthFirst,
        checks={
            "/admin/": check_admin_key,
            "/admin/reviews/": check_staff_key,  # decisions: a reviewer's own key, not the admin key
            "/v1/": check_access_token,
            "/canary/hits": check_webhook_key,
            "/vendor/": check_vendor_key,
            "/vendor/keys": check_password_login,  # a new key, for the vendor's password
        },
    )

    from appwarden.attribution.api import router as attribution_router
    from appwarden.broker.api import router as broker_router
    from appwarden.broker.catalog import router as catalog_router
    from appwarden.broker.detokenize import router as detokenize_router
    from appwarden.broker.restricted import router as restricted_router
    from appwarden.canary.api import router as canary_router
    from appwarden.incident.api import router as incident_router
    from appwarden.ledger.api import router as ledger_router
    from appwarden.marketplace.api import router as marketplace_router
    from appwarden.marketplace.vendor_api import router as vendor_router
    from appwarden.monitor.api import router as monitor_router
    from appwarden.oauth.api import router as oauth_router
    from appwarden.obligations.api import router as obligations_router
    from appwarden.obligations.api import vendor_router as obligations_vendor_router
    from appwarden.screening.api import audits_router, reviews_router
    from appwarden.screening.api import vendor_router as screening_vendor_router

    app.include_router(oauth_router)
    app.include_router(broker_router)
    app.include_router(catalog_router)
    app.include_router(detokenize_router)
    app.include_router(restricted_router)
    app.include_router(marketplace_router)
    app.include_router(ledger_router)
    app.include_router(obligations_router)
    app.include_router(incident_router)
    app.include_router(canary_router)
    app.include_router(attribution_router)
    app.include_router(monitor_router)
    app.include_router(vendor_router)
    app.include_router(screening_vendor_router)
    app.include_router(obligations_vendor_router)
    app.include_router(reviews_router)
    app.include_router(audits_router)

    from appwarden.console.api import install as install_console

    install_console(app)  # the web console: its routes, static files and security headers
    api_docs.install(app)

    app.add_middleware(RequestLog)  # outermost: its line covers every answer, 413s and 500s included

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
