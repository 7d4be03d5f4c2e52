"""Console routes for every role: sign in and out, the TOTP step, the language switch, each role's
landing page. The store owner's pages are in ``console.owner``, the vendor's in ``console.vendor`` and
``console.vendor_screening``, the reviewer's in ``console.reviews``;
:func:`install` puts them all, the static files and the security headers on the app."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from appwarden.console import i18n, security, service
from appwarden.console.pages import (
    HOME,
    ConsoleRoute,
    address_of,
    check_csrf,
    db_of,
    lang_of,
    page,
    safe_next,
    settings_of,
    signed_in,
)
from appwarden.console.service import visitor
from appwarden.console.sessions import TOTP
from appwarden.errors import InvalidInput, NotFound
from appwarden.platform import totp
from appwarden.platform.roles import Role
from appwarden.web.login_throttle import LoginThrottle

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
STATIC = Path(__file__).parent / "static"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600


def _session_cookie(request: Request) -> str | None:
    return security.read_cookie(request, settings_of(request), security.SESSION_COOKIE)


def _signed_in_response(request: Request, cookie: str, target: str) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    settings = settings_of(request)
    security.set_cookie(
        response, settings, security.SESSION_COOKIE, cookie, max_age=settings.console_session_max_seconds
    )
    return response


@router.get("")
def home(request: Request) -> Response:
    """Each role's landing page."""
    with db_of(request).session() as session:
        who = signed_in(request, session)
        return RedirectResponse(HOME[who.role], status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (every role)."""
    with db_of(request).session() as session:
        who = visitor(session, _session_cookie(request), settings_of(request))
    if who is not None:
        return RedirectResponse(safe_next(next) or HOME[who.role], status_code=303)
    return page(request, "login.html", next=safe_next(next) or "", username="", error=None)


def _login_again(
    request: Request, status: int, error: str, username: str, target: str | None
) -> HTMLResponse:
    return page(request, "login.html", status=status, next=target or "", username=username, error=error)


@router.post("/login")
def login_submit(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
    next: str = Form(""),
) -> Response:
    """Check the form token, the throttle and the password; then a new session (and its cookie)."""
    check_csrf(request, None, csrf_token)
    target = safe_next(next)
    throttle: LoginThrottle = request.app.state.login_throttle
    with db_of(request).session() as session:
        outcome = service.login(
            session,
            throttle,
            settings_of(request),
            username=username,
            password=password,
            address=address_of(request),
        )
    if outcome.status == "locked":
        minutes = max(1, -(-outcome.retry_after // 60))
        error = i18n.gettext(
            lang_of(request), "Too many failed sign-ins. Try again in about %(minutes)s minutes."
        )
        locked = _login_again(request, 429, error % {"minutes": minutes}, username, target)
        locked.headers["Retry-After"] = str(outcome.retry_after)
        return locked
    if outcome.status == "bad" or outcome.cookie is None:
        error = i18n.gettext(lang_of(request), "Wrong username or password.")
        return _login_again(request, 401, error, username, target)
    if outcome.status == "totp":
        follow = "/console/login/totp" + (f"?next={target}" if target else "")
        return _signed_in_response(request, outcome.cookie, follow)
    assert outcome.role is not None
    return _signed_in_response(request, outcome.cookie, target or HOME[outcome.role])


@router.get("/login/totp")
def totp_form(request: Request, next: str | None = None) -> Response:
    """The second step for a security admin with TOTP on."""
    with db_of(request).session() as session:
        pending = visitor(session, _session_cookie(request), settings_of(request), stage=TOTP)
    if pending is None:
        return RedirectResponse("/console/login", status_code=303)
    return page(
        request,
        "totp.html",
        who=None,
        csrf_token_override=pending.session.csrf_token,
        next=safe_next(next) or "",
        error=None,
    )


@router.post("/login/totp")
def totp_submit(
    request: Request, code: str = Form(""), csrf_token: str = Form(""), next: str = Form("")
) -> Response:
    throttle: LoginThrottle = request.app.state.login_throttle
    target = safe_next(next)
    with db_of(request).session() as session:
        pending = visitor(session, _session_cookie(request), settings_of(request), stage=TOTP)
        if pending is None:
            return RedirectResponse("/console/login", status_code=303)
        check_csrf(request, pending, csrf_token)
        outcome = service.second_factor(
            session, throttle, settings_of(request), pending, code=code, address=address_of(request)
        )
    if outcome.status == "locked":
        return RedirectResponse("/console/login", status_code=303)
    if outcome.status == "bad" or outcome.cookie is None:
        error = i18n.gettext(
            lang_of(request), "The code does not match. Check the authenticator's clock and try again."
        )
        return page(
            request,
            "totp.html",
            status=401,
            csrf_token_override=pending.session.csrf_token,
            next=target or "",
            error=error,
        )
    return _signed_in_response(request, outcome.cookie, target or HOME[Role.SECURITY_ADMIN])


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("")) -> Response:
    """End the session (the form carries its CSRF token, so no other site can sign anyone out)."""
    with db_of(request).session() as session:
        who = signed_in(request, session)
        check_csrf(request, who, csrf_token)
        service.logout(session, who)
    response = RedirectResponse("/console/login", status_code=303)
    security.clear_cookie(response, settings_of(request), security.SESSION_COOKIE)
    return response


@router.post("/lang")
def switch_language(
    request: Request, lang: str = Form(""), csrf_token: str = Form(""), next: str = Form("")
) -> Response:
    """Switch the language (a cookie, so it holds before sign-in too)."""
    with db_of(request).session() as session:
        who = visitor(session, _session_cookie(request), settings_of(request))
    check_csrf(request, who, csrf_token)
    response = RedirectResponse(safe_next(next) or "/console/login", status_code=303)
    security.set_cookie(
        response,
        settings_of(request),
        security.LANGUAGE_COOKIE,
        i18n.language(lang),
        max_age=LANGUAGE_COOKIE_AGE,
    )
    return response


@router.get("/account/totp")
def totp_setup(request: Request) -> Response:
    """Turn on TOTP: a new secret to enter in an authenticator, and a code to prove it."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        has_totp = totp.enabled(session, who.account.id)
    secret = totp.new_secret()
    return page(
        request,
        "totp_setup.html",
        who=who,
        has_totp=has_totp,
        secret=secret,
        uri=totp.provisioning_uri(secret, who.username),
        error=None,
    )


@router.post("/account/totp")
def totp_enable(
    request: Request, secret: str = Form(""), code: str = Form(""), csrf_token: str = Form("")
) -> Response:
    """Turn TOTP on once the code proves the authenticator holds ``secret``; a wrong code shows the
    same key again with the error."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.SECURITY_ADMIN)
        check_csrf(request, who, csrf_token)
    try:
        with db_of(request).session() as session:
            service.enable_totp(session, settings_of(request), who, secret=secret, code=code)
    except InvalidInput:
        error = i18n.gettext(
            lang_of(request), "The code does not match. Check the authenticator's clock and try again."
        )
        return page(
            request,
            "totp_setup.html",
            who=who,
            status=422,
            has_totp=False,
            secret=secret,
            uri=totp.provisioning_uri(secret, who.username),
            error=error,
        )
    return RedirectResponse("/console/security", status_code=303)


catch_all = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)


@catch_all.get("/{rest:path}")
def not_found(request: Request, rest: str) -> Response:
    """Any other console path: an HTML 404."""
    raise NotFound(f"no console page {rest!r}")


def install(app: FastAPI) -> None:
    """The console's routes, static files and security headers on ``app``."""
    from appwarden.console.incident_files import router as incident_files_router
    from appwarden.console.incidents import router as incidents_router
    from appwarden.console.owner import router as owner_router
    from appwarden.console.owner_incidents import router as owner_incidents_router
    from appwarden.console.owner_records import router as owner_records_router
    from appwarden.console.reviews import router as reviews_router
    from appwarden.console.security_apps import router as security_apps_router
    from appwarden.console.security_home import router as security_home_router
    from appwarden.console.security_people import router as security_people_router
    from appwarden.console.vendor import router as vendor_router
    from appwarden.console.vendor_erasure import router as vendor_erasure_router
    from appwarden.console.vendor_screening import router as vendor_screening_router

    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(router)
    app.include_router(owner_router)
    app.include_router(owner_incidents_router)
    app.include_router(owner_records_router)
    app.include_router(reviews_router)
    app.include_router(vendor_screening_router)  # before vendor_router: /apps/new is not an app's slug
    app.include_router(vendor_router)
    app.include_router(vendor_erasure_router)
    app.include_router(security_home_router)
    app.include_router(security_apps_router)
    app.include_router(security_people_router)
    app.include_router(incidents_router)
    app.include_router(incident_files_router)
    app.include_router(catch_all)
    app.add_middleware(security.ConsoleHeaders, https=security.https(app.state.settings))
