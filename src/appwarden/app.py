"""The FastAPI application factory: composes every capability's router."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from appwarden import __version__
from appwarden.config import Settings, get_settings
from appwarden.db.session import Database, get_database
from appwarden.web import problems


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """Build the ASGI app for ``settings`` (the process settings by default)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="appwarden",
        version=__version__,
        description="Data API for marketplace apps, OAuth 2.0 server and the security team's admin API.",
    )
    app.state.settings = settings
    app.state.db = db or get_database(settings)
    problems.install(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.master_key.decode(),
        session_cookie="appwarden_session",
        same_site="lax",
        https_only=settings.base_url.startswith("https"),
        max_age=3600,
    )

    from appwarden.broker.api import router as broker_router
    from appwarden.incident.api import router as incident_router
    from appwarden.ledger.api import router as ledger_router
    from appwarden.marketplace.api import router as marketplace_router
    from appwarden.oauth.api import router as oauth_router

    app.include_router(oauth_router)
    app.include_router(broker_router)
    app.include_router(marketplace_router)
    app.include_router(ledger_router)
    app.include_router(incident_router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
