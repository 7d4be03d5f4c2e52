"""The console's HTTP plumbing: rendering in the visitor's language, who is signed in, CSRF checks,
and the route class that turns errors into HTML pages instead of problem+json."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.responses import Response

from appwarden.config import Settings
from appwarden.console import i18n, security
from appwarden.console.i18n import N_
from appwarden.console.labels import ROLES
from appwarden.console.service import Visitor, visitor
from appwarden.console.sessions import FULL
from appwarden.db.session import Database
from appwarden.errors import AppwardenError, Forbidden
from appwarden.platform.roles import Role

HOME = {
    Role.STORE_OWNER: "/console/apps",
    Role.SECURITY_ADMIN: "/console/security",
    Role.REVIEWER: "/console/reviews",
    Role.VENDOR: "/console/vendor/apps",
}
# Each role's navigation; an entry without a link is a page still to come (shown, marked "later").
NAV: dict[Role, list[tuple[str | None, str]]] = {
    Role.STORE_OWNER: [
        ("/console/apps", N_("Connected apps")),
        ("/console/notices", N_("Notices")),
        ("/console/reports", N_("Report drafts")),
        ("/console/who-has", N_("Who has a customer's data")),
        ("/console/records", N_("Records of provision")),
        ("/console/holdings", N_("What vendors may still hold")),
    ],
    Role.SECURITY_ADMIN: [
        ("/console/security", N_("Overview")),
        ("/console/account/totp", N_("Two-step sign-in")),
        ("/console/security/events", N_("Security events")),
        ("/console/security/people", N_("A person's history")),
        ("/console/security#apps", N_("Apps")),
        ("/console/security/incidents", N_("Incidents")),
        ("/console/security#alerts", N_("Alerts")),
    ],
    Role.REVIEWER: [("/console/reviews", N_("Reviews")), ("/console/audits", N_("Audits"))],
    Role.VENDOR: [
        ("/console/vendor/apps", N_("My apps")),
        ("/console/vendor/apps/new", N_("Register an app")),
        ("/console/vendor/alerts", N_("Alerts")),
        ("/console/vendor/erasure-requests", N_("Erasure requests")),
    ],
}


class LoginRequired(Exception):
    """No signed-in session: a page request goes to the login form, then back."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


class CsrfRefused(Forbidden):
    """403: the form's CSRF token is missing or wrong."""

    def __init__(self) -> None:
        super().__init__("the form's CSRF token is missing or wrong", code="csrf_failed")


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def lang_of(request: Request) -> str:
    """The visitor's language: the language cookie, Japanese by default."""
    return i18n.language(security.read_cookie(request, settings_of(request), security.LANGUAGE_COOKIE))


def address_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def safe_next(target: str | None) -> str | None:
    """Only a console page of this site is a place to return to after login."""
    if not target or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return None
    return target


def signed_in(request: Request, session: Session, *roles: Role) -> Visitor:
    """The signed-in visitor, if of one of ``roles`` (any role when none are named).

    No session: :class:`LoginRequired` (the route class redirects a GET to the login form). A role
    the page is not for: 403."""
    who = visitor(
        session,
        security.read_cookie(request, settings_of(request), security.SESSION_COOKIE),
        settings_of(request),
        stage=FULL,
    )
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    if roles and who.role not in roles:
        raise Forbidden("this page is not for your role", code="wrong_role")
    return who


def check_csrf(request: Request, who: Visitor | None, presented: str | None) -> None:
    """Refuse (403) a form whose token is not the session's, or before sign-in the pre-session one's.

    htmx requests may send it as the ``X-CSRF-Token`` header instead of a form field."""
    presented = presented or request.headers.get("x-csrf-token")
    if who is not None:
        expected: str | None = who.session.csrf_token
    else:
        value = security.read_cookie(request, settings_of(request), security.PRESESSION_COOKIE)
        expected = security.presession_token(settings_of(request), value) if value else None
    if not security.tokens_match(expected, presented):
        raise CsrfRefused()


def page(
    request: Request, template: str, *, who: Visitor | None = None, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` in the visitor's language with the chrome (nav, sign-out, language switch)
    and the form token every form carries."""
    settings = settings_of(request)
    new_presession: str | None = None
    override = context.pop("csrf_token_override", None)  # the pending TOTP session's token
    if override is not None:
        csrf = override
    elif who is not None:
        csrf = who.session.csrf_token
    else:
        value, new = security.presession_value(request, settings)
        csrf = security.presession_token(settings, value)
        new_presession = value if new else None
    html = i18n.render(
        lang_of(request),
        template,
        who=who,
        nav=NAV.get(who.role, []) if who else [],
        role_label=ROLES[who.role] if who else None,
        csrf_token=csrf,
        here=request.url.path,
        **context,
    )
    response = HTMLResponse(html, status)
    if new_presession is not None:
        security.set_cookie(response, settings, security.PRESESSION_COOKIE, new_presession, max_age=None)
    return response


def error_page(request: Request, status: int, detail: str, who: Visitor | None = None) -> HTMLResponse:
    return page(request, "error.html", who=who, status=status, status_code=status, detail=detail)


# The message shown for each error the console's own pages raise (``code``); anything else shows the
# error's English detail, which never carries another tenant's data (errors name what was asked for).
ERROR_MESSAGES = {
    "csrf_failed": N_("The form expired or did not come from this site. Go back, reload and try again."),
    "wrong_role": N_("This page is not for your role."),
    "connection_not_found": N_("There is no such connection in your company."),
    "connection_already_revoked": N_("This app is already disconnected."),
    "app_not_found": N_("There is no such app of your company."),
    "not_found": N_("There is no such page."),
    "incident_not_found": N_("There is no such incident concerning your company."),
    "company_not_affected": N_("None of your company's customers was exposed in this incident."),
    "totp_code_invalid": N_("The code does not match. Check the authenticator's clock and try again."),
}


class ConsoleRoute(APIRoute):
    """Console routes answer in HTML: an :class:`AppwardenError` becomes an error page with its status,
    a missing sign-in a redirect to the login form (for a GET) or 403 (for a form post)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                if request.method == "GET":
                    return RedirectResponse(f"/console/login?next={quote(exc.target)}", status_code=303)
                return _error(request, 403, "csrf_failed", "sign in first")
            except AppwardenError as exc:
                return _error(request, exc.status, exc.code, exc.detail)

        return console_handler


def _error(request: Request, status: int, code: str, detail: str) -> HTMLResponse:
    message = ERROR_MESSAGES.get(code)
    text = i18n.gettext(lang_of(request), message) if message else detail
    return error_page(request, status, text)
