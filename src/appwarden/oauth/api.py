"""OAuth HTTP routes: metadata, owner login, the consent page, token, revocation and introspection.

Routes are async only to read the body; the work (argon2, SQL) runs in a worker thread inside one
transaction. Token, revocation and introspection errors are RFC 6749 JSON errors, as those RFCs say;
the browser-facing pages show an HTML error and redirect only to a validated, registered redirect URI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.util import scope_to_list
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.events.service import EventTag, record
from appwarden.marketplace.lifecycle import PRE_LISTING, may_install
from appwarden.marketplace.service import consent_disclosure
from appwarden.oauth.adapter import HttpRequest, HttpResponse, read_request, to_response
from appwarden.oauth.pages import (
    Session,
    consent_items,
    csrf_ok,
    csrf_token,
    error_page,
    message,
    page,
    safe_next,
    vendor_obligations,
)
from appwarden.oauth.server import AppwardenServer, build_server, metadata
from appwarden.platform.accounts import Account, authenticate
from appwarden.platform.roles import Role
from appwarden.platform.staff import is_test_company
from appwarden.web.login_throttle import Lockout, LoginThrottle
from appwarden.web.problems import PROBLEM_CONTENT

router = APIRouter(tags=["oauth"])
T = TypeVar("T")

AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)

# -- OpenAPI: these routes read their own form bodies, so the schema says what they take and send ---

_HTML = {"text/html": {"schema": {"type": "string"}}}
_OAUTH_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "description": "An RFC 6749 §5.2 error.",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        }
    }
}


def _form(*names: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` for a form body of string fields."""
    schema: dict[str, Any] = {"type": "object", "properties": {n: {"type": "string"} for n in names}}
    if required:
        schema["required"] = list(required)
    return {
        "requestBody": {
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
            "required": True,
        }
    }


def _html(*statuses: int) -> Responses:
    texts = {
        200: "The page.",
        400: "An error page (the request is not valid; nothing is sent back to the app).",
        401: "The login form again: wrong username or password.",
        403: "An error page: CSRF check failed, not a company owner, or the app is not listed.",
        429: "The login form again: locked after repeated failures (`Retry-After` says for how long).",
    }
    return {s: {"description": texts[s], "content": _HTML} for s in statuses}


Responses = dict[int | str, dict[str, Any]]
_REDIRECT: Responses = {
    302: {"description": "Back to the app's registered redirect URI, with `code` or `error`."},
    303: {"description": "To the login form, or where the login form was opened from."},
}


def _client_authenticated(what: str) -> Responses:
    return {
        200: {"description": what},
        400: {
            "description": "`invalid_request`, `invalid_grant`, `unsupported_grant_type`…; a body that "
            "cannot be parsed at all is a `bad_request` problem.",
            "content": _OAUTH_ERROR | PROBLEM_CONTENT,
        },
        401: {"description": "`invalid_client`: client authentication failed.", "content": _OAUTH_ERROR},
    }


_AUTHORIZE_QUERY = {
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in (
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
        )
    ]
}

# -- adapter ---------------------------------------------------------------------------------------


async def _in_transaction(request: Request, work: Callable[[AppwardenServer], T]) -> T:
    """Run ``work`` with a server bound to a fresh transaction, in a worker thread."""
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    clock: Callable[[], Any] = getattr(request.app.state, "oauth_clock", utcnow)

    def run() -> T:
        with db.session() as session:
            return work(build_server(session, settings, now=clock))

    return await run_in_threadpool(run)


def _oauth_error(error: OAuth2Error) -> HttpResponse:
    status, body, headers = error()
    return HttpResponse(status, body, headers)


def current_owner(server: AppwardenServer, session: Session) -> Account | None:
    user_id = session.get("user_id")
    user = server.store.user(user_id) if isinstance(user_id, int) else None
    if user is None or user.role != Role.STORE_OWNER or user.company_id is None:
        return None
    return user


def login_redirect(params: dict[str, str]) -> RedirectResponse:
    target = "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if k in AUTHORIZE_PARAMS})
    return RedirectResponse("/oauth/login?" + urlencode({"next": target}), status_code=303)


# -- routes ---------------------------------------------------------------------------------------


@router.get("/.well-known/oauth-authorization-server")
def server_metadata(request: Request) -> JSONResponse:
    """RFC 8414 authorisation server metadata."""
    return JSONResponse(dict(metadata(request.app.state.settings)))


@router.get("/oauth/login", response_class=HTMLResponse, responses=_html(200))
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    """The company owner's login form."""
    return page(
        "login.html",
        csrf_token=csrf_token(request.session),
        next=safe_next(next) or "",
        username="",
        error=None,
    )


@router.post(
    "/oauth/login",
    response_class=HTMLResponse,
    responses=_html(200, 401, 403, 429)
    | {
        303: _REDIRECT[303],
        503: {
            "description": "`unavailable`: the login throttle (Redis) cannot be reached.",
            "content": PROBLEM_CONTENT,
        },
    },
    openapi_extra=_form("username", "password", "csrf_token", "next"),
)
async def login_submit(request: Request) -> Response:
    """Check the CSRF token and the password (argon2); a company owner gets a fresh session."""
    http = await read_request(request)
    form = dict(http.form)
    session = request.session
    username = form.get("username", "")[:100]
    target = safe_next(form.get("next"))

    def again(status: int, error: tuple[str, str]) -> HTMLResponse:
        return page(
            "login.html",
            status,
            csrf_token=csrf_token(session),
            next=target or "",
            username=username,
            error={"ja": error[0], "en": error[1]},
        )

    if not csrf_ok(session, form.get("csrf_token")):
        return again(
            403,
            (
                "フォームの有効期限が切れました。もう一度お試しください。",
                "The form expired (CSRF check failed).",
            ),
        )
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"

    def check(server: AppwardenServer) -> int | str | Lockout:
        # The lock-out is checked before the password: while locked, the right password fails too.
        lockout = throttle.lockout(username, address)
        if lockout is not None:
            record(
                server.session,
                EventTag.USER_LOGIN_THROTTLED,
                actor=username,
                address=address,
                scope=lockout.scope,
                retry_after=lockout.retry_after,
                via="oauth",
            )
            return lockout
        user = authenticate(server.session, username, form.get("password", ""))
        if user is None or user.role != Role.STORE_OWNER or user.company_id is None:
            reason = "bad_credentials" if user is None else "not_company_owner"
            throttle.failed(username, address)
            record(
                server.session,
                EventTag.USER_LOGIN_FAILED,
                actor=username,
                address=address,
                reason=reason,
                via="oauth",
            )
            return reason
        throttle.succeeded(username, address)
        record(
            server.session, EventTag.USER_LOGIN, actor=user.username, company_id=user.company_id, via="oauth"
        )
        return user.id

    outcome = await _in_transaction(request, check)
    if isinstance(outcome, Lockout):
        minutes = max(1, -(-outcome.retry_after // 60))
        locked = again(
            429,
            (
                f"ログインの失敗が続いたため、しばらくログインできません。約{minutes}分後にお試しください。",
                f"Too many failed logins. Try again in about {minutes} minute(s).",
            ),
        )
        locked.headers["Retry-After"] = str(outcome.retry_after)
        return locked
    if outcome == "bad_credentials":
        return again(401, ("ユーザー名またはパスワードが違います。", "Wrong username or password."))
    if isinstance(outcome, str):
        return again(
            403, ("アプリ連携を承認できるのは契約オーナーだけです。", "Only company owners can connect apps.")
        )
    session.clear()  # a new session on login: no fixation, a fresh CSRF token
    session["user_id"] = outcome
    csrf_token(session)
    if target:
        return RedirectResponse(target, status_code=303)
    return message(200, ("ログインしました", "Logged in"), ("ログインしました。", "You are logged in."))


@router.post(
    "/oauth/logout", response_class=HTMLResponse, responses=_html(200, 403), openapi_extra=_form("csrf_token")
)
async def logout(request: Request) -> HTMLResponse:
    http = await read_request(request)
    if not csrf_ok(request.session, dict(http.form).get("csrf_token")):
        return message(403, ("エラー", "Error"), ("CSRF の確認に失敗しました。", "CSRF check failed."))
    request.session.clear()
    return message(200, ("ログアウトしました", "Logged out"), ("ログアウトしました。", "You are logged out."))


@router.get(
    "/oauth/authorize",
    response_class=HTMLResponse,
    responses=_html(200, 400, 403) | _REDIRECT,
    openapi_extra=_AUTHORIZE_QUERY,
)
async def authorize_page(request: Request) -> Response:
    """Validate the authorisation request, then log the owner in or show the consent form."""
    http = await read_request(request)
    session = request.session
    return await _in_transaction(request, lambda server: _consent(server, http, session, submit=False))


@router.post(
    "/oauth/authorize",
    response_class=HTMLResponse,
    responses=_html(200, 400, 403) | _REDIRECT,
    openapi_extra=_form(*AUTHORIZE_PARAMS, "csrf_token", "decision", "grant"),
)
async def authorize_submit(request: Request) -> Response:
    """The consent form's answer: Deny → ``access_denied``; Approve → connection + code."""
    http = await read_request(request)
    session = request.session
    if not csrf_ok(session, dict(http.form).get("csrf_token")):
        return message(
            403,
            ("確認できませんでした", "Could not verify the request"),
            ("フォームの CSRF トークンが無効です。", "The form's CSRF token is invalid."),
            error_code="invalid_csrf_token",
        )
    return await _in_transaction(request, lambda server: _consent(server, http, session, submit=True))


def _consent(server: AppwardenServer, http: HttpRequest, session: Session, *, submit: bool) -> Response:
    try:
        oauth_request = server.create_oauth2_request(http)
    except OAuth2Error as error:
        return error_page(error)
    params = {k: v for k, v in oauth_request.payload.data.items() if k in AUTHORIZE_PARAMS}
    try:
        grant = server.get_consent_grant(oauth_request, end_user=None)
    except OAuth2Error as error:
        if error.redirect_uri:  # validated against the client: safe to send the error back
            return to_response(server.handle_error_response(oauth_request, error))
        return error_page(error)
    app = grant.client.app
    pre_listing = app.listing_state in PRE_LISTING
    if not (may_install(app.listing_state) or pre_listing):
        return message(
            403,
            ("このアプリは利用できません", "This app is not available"),
            (f"アプリの状態: {app.listing_state}", f"The app is {app.listing_state}."),
            error_code=f"app_{app.listing_state}",
        )
    user = current_owner(server, session)
    if user is None:
        return login_redirect(params)
    if pre_listing and not is_test_company(server.store.session, user.company_id or 0):
        # Only listed apps can be installed; an app in screening may join test companies only.
        return message(
            403,
            ("このアプリはまだ公開されていません", "This app is not listed yet"),
            (
                f"アプリの状態: {app.listing_state}。テスト用の会社だけが連携できます。",
                f"The app is {app.listing_state}: only test companies may connect it until it is listed.",
            ),
            error_code="app_not_listed",
        )
    if not submit:
        company = server.store.company(user.company_id or 0)
        disclosure = consent_disclosure(server.store.session, app)
        items = consent_items(oauth_request.scope, disclosure)
        return page(
            "consent.html",
            app=app,
            company=company,
            user=user,
            disclosure=disclosure,
            items=items,
            obligations=vendor_obligations(items, server.settings),
            params=sorted(params.items()),
            redirect_uri=grant.redirect_uri,
            csrf_token=csrf_token(session),
            canaries=server.settings.canaries_per_connection if server.settings.canary_enabled else 0,
        )
    requested = scope_to_list(oauth_request.scope) or []
    ticked = set(oauth_request.payload.datalist.get("grant", []))
    consented = [s for s in requested if s in ticked]
    approved = oauth_request.payload.data.get("decision") == "approve" and bool(consented)
    if approved:
        connection = server.store.grant_connection(app, user, consented, settings=server.settings)
        oauth_request.consented_scope = " ".join(s for s in consented if s in connection.scopes)
    result = server.create_authorization_response(
        oauth_request, grant_user=user if approved else None, grant=grant
    )
    return to_response(result)


@router.post(
    "/oauth/token",
    responses=_client_authenticated("The token response (RFC 6749 §5.1)."),
    openapi_extra=_form(
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        required=("grant_type",),
    ),
)
async def token(request: Request) -> Response:
    """RFC 6749 token endpoint: ``authorization_code`` (with PKCE) and rotating ``refresh_token``."""
    http = await read_request(request)
    return to_response(await _in_transaction(request, lambda s: _safe(lambda: s.create_token_response(http))))


@router.post(
    "/oauth/revoke",
    responses=_client_authenticated("Revoked, or not a token of this client (RFC 7009 §2.2)."),
    openapi_extra=_form("token", "token_type_hint", "client_id", "client_secret", required=("token",)),
)
async def revoke(request: Request) -> Response:
    """RFC 7009 revocation (client-authenticated)."""
    http = await read_request(request)
    return to_response(
        await _in_transaction(
            request, lambda s: _safe(lambda: s.create_endpoint_response("revocation", http))
        )
    )


@router.post(
    "/oauth/introspect",
    responses=_client_authenticated("The token's state (RFC 7662 §2.2)."),
    openapi_extra=_form("token", "token_type_hint", "client_id", "client_secret", required=("token",)),
)
async def introspect(request: Request) -> Response:
    """RFC 7662 introspection (client-authenticated; only the client's own tokens read as active)."""
    http = await read_request(request)
    return to_response(
        await _in_transaction(
            request, lambda s: _safe(lambda: s.create_endpoint_response("introspection", http))
        )
    )


def _safe(call: Callable[[], HttpResponse]) -> HttpResponse:
    """Authlib answers protocol errors itself; this catches the ones raised while building the request
    (e.g. ``insecure_transport``) so they are OAuth JSON errors too."""
    try:
        return call()
    except OAuth2Error as error:
        return _oauth_error(error)
