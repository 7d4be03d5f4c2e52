"""A vendor's person's pages: the vendor's own apps. Every path is scoped to the vendor the account
works for: another vendor's app is simply not found."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from appwarden.console.labels import LISTING_STATES, grant_rows
from appwarden.console.pages import ConsoleRoute, db_of, page, signed_in
from appwarden.errors import NotFound
from appwarden.marketplace.vendor_views import app_of, apps_of
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console/vendor", include_in_schema=False, route_class=ConsoleRoute)


@router.get("/apps")
def my_apps(request: Request) -> Response:
    """The vendor's apps and where each stands."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
        apps = apps_of(session, who.account.vendor) if who.account.vendor else []
    return page(request, "vendor_apps.html", who=who, apps=apps, states=LISTING_STATES)


@router.get("/apps/{slug}")
def my_app(request: Request, slug: str) -> Response:
    """One app of the vendor (404 for another vendor's)."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.VENDOR)
        if not who.account.vendor:
            raise NotFound(f"no app {slug!r} of this vendor", code="app_not_found")
        app = app_of(session, who.account.vendor, slug)
    return page(
        request,
        "vendor_app.html",
        who=who,
        app=app,
        grants=grant_rows(app.approved_scopes),
        states=LISTING_STATES,
    )
