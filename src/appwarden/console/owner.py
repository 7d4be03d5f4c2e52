"""The store owner's pages: the company's connected apps, each with its fields and modes, and the
Disconnect button (a form post with the session's CSRF token; htmx swaps the row in place, and without
JavaScript the page reloads). Every path is scoped to the signed-in owner's company: another
company's connection id is simply not found."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from appwarden.console import labels, service
from appwarden.console.labels import CONNECTION_STATUSES, grant_rows
from appwarden.console.owner_data import app_data
from appwarden.console.pages import ConsoleRoute, check_csrf, db_of, lang_of, page, signed_in
from appwarden.oauth.connections import ConnectionView, company_connection, company_connections
from appwarden.platform.roles import Role

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


@dataclass(frozen=True, slots=True)
class Row:
    """One connection as its table row shows it."""

    conn: ConnectionView
    grants: list[dict[str, object]]
    status_label: str
    live: bool  # not yet disconnected (a suspended connection may still be disconnected by its owner)


def _row(conn: ConnectionView) -> Row:
    return Row(
        conn,
        grant_rows(conn.granted, raw_by_restricted_token_only=conn.raw_by_restricted_token_only),
        CONNECTION_STATUSES.get(conn.status, conn.status),
        conn.status != "revoked",
    )


@router.get("/apps")
def connected_apps(request: Request, done: str | None = None) -> Response:
    """Every app connected to the owner's company, with each field and mode it is granted."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        assert who.account.company_id is not None
        rows = [_row(c) for c in company_connections(session, who.account.company_id)]
    # ``done`` names a connection just disconnected: shown only if it is one of this company's.
    notice = next((r.conn for r in rows if r.conn.public_id == done), None) if done else None
    return page(request, "owner_apps.html", who=who, rows=rows, notice=notice)


@router.get("/apps/{connection}")
def connected_app(request: Request, connection: str) -> Response:
    """One connection of the owner's company (404 for any other company's), with what the app took of
    the company's customers (``console.owner_data``)."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        assert who.account.company_id is not None
        row = _row(company_connection(session, who.account.company_id, connection))
        data = app_data(session, row.conn, lang_of(request))
    return page(request, "owner_app.html", who=who, row=row, data=data, labels=labels)


@router.post("/apps/{connection}/disconnect")
def disconnect(request: Request, connection: str, csrf_token: str = Form("")) -> Response:
    """Revoke the connection and every token under it, at once (recorded with the owner's name)."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.STORE_OWNER)
        check_csrf(request, who, csrf_token)
        assert who.account.company_id is not None
        service.disconnect_app(session, who, connection)
        row = _row(company_connection(session, who.account.company_id, connection))
    if request.headers.get("hx-request") == "true":  # htmx: the row, revoked, swapped in place
        return page(request, "_connection_row.html", who=who, row=row, notice=row.conn)
    return RedirectResponse(f"/console/apps?done={connection}", status_code=303)
