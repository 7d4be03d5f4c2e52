"""OAuth HTTP routes: metadata, owner login, the consent page, token, revocation and introspection.

Routes are async only to read the body; the work (argon2, SQL) runs in a worker thread inside one
transaction. Token, revocation and introspection errors are RFC 6749 JSON errors, as those RFCs say;
the browser-facing pages show an HTML error and redirect only to a validated, registered redirect URI.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import orjson
from authlib.common.security import generate_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.util import scope_to_list
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.events.service import EventTag, record
from appwarden.marketplace.models import ListingState
from appwarden.marketplace.scopes import FieldScope, parse_scope
from appwarden.oauth.server import AppwardenServer, HttpRequest, HttpResponse, build_server, metadata
from appwarden.platform.models import User
from appwarden.platform.service import authenticate_user

router = APIRouter(tags=["oauth"])
T = TypeVar("T")
Session = MutableMapping[str, Any]

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
FIELD_LABELS = {
    "name": ("氏名", "Name"),
    "name_kana": ("フリガナ", "Name (kana)"),
    "phone": ("電話番号", "Phone number"),
    "email": ("メールアドレス", "Email address"),
    "address": ("住所", "Address"),
    "birthday": ("生年月日", "Date of birth"),
    "gender": ("性別", "Gender"),
    "points": ("ポイント", "Points"),
    "rank": ("会員ランク", "Member rank"),
}
MODE_LABELS = {
    "raw": ("そのままの値（全体）", "The full value"),
    "masked": ("一部を伏せた値（例: 090-****-5678）", "Masked (e.g. 090-****-5678)"),
    "token": ("仮名トークン（実際の値は渡しません）", "A pseudonym token (the real value is not given)"),
}
RESOURCE_LABELS = {
    "transactions:read": ("取引履歴", "Transactions", "閲覧のみ", "Read only"),
    "products:read": ("商品情報", "Products", "閲覧のみ", "Read only"),
    "stores:read": ("店舗情報", "Stores", "閲覧のみ", "Read only"),
}
# The consent page must not be framed (clickjacking) nor cached.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


# -- adapter --------------------------------------------------------------------------------------


async def read_request(request: Request) -> HttpRequest:
    """Read everything Authlib may need from the request (the body only for form posts)."""
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            data = await request.form()
            form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    return HttpRequest(
        method=request.method,
        path=request.url.path,
        query_string=request.url.query,
        headers=request.headers,
        query=list(request.query_params.multi_items()),
        form=form,
    )


def to_response(result: HttpResponse) -> Response:
    """Authlib's ``(status, body, headers)`` as a Starlette response."""
    body = orjson.dumps(result.body) if isinstance(result.body, dict) else (result.body or b"")
    return Response(content=body, status_code=result.status, headers=dict(result.headers))


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


# -- pages ----------------------------------------------------------------------------------------


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**context), status, headers=PAGE_HEADERS)


def message(status: int, title: tuple[str, str], text: tuple[str, str], **extra: Any) -> HTMLResponse:
    return page(
        "message.html",
        status,
        title_ja=title[0],
        title_en=title[1],
        message_ja=text[0],
        message_en=text[1],
        css="error" if status >= 400 else "notice",
        **extra,
    )


def error_page(error: OAuth2Error) -> HTMLResponse:
    return message(
        error.status_code if error.status_code >= 400 else 400,
        ("認可リクエストのエラー", "Authorisation request error"),
        (
            "このリクエストは処理できません。アプリには戻りません。",
            "This request cannot be processed; you will not be sent back to the app.",
        ),
        error_code=error.error,
        description=error.description,
    )


def csrf_token(session: Session) -> str:
    """The session's CSRF token (synchroniser pattern), created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = generate_token(32)
        session["csrf"] = token
    return token


def csrf_ok(session: Session, presented: str | None) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def safe_next(target: str | None) -> str | None:
    """Only our own authorisation endpoint is a valid place to return to after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path != "/oauth/authorize" or target.startswith("//"):
        return None
    return target


def current_owner(server: AppwardenServer, session: Session) -> User | None:
    user_id = session.get("user_id")
    user = server.store.user(user_id) if isinstance(user_id, int) else None
    if user is None or user.role != "company_owner" or user.company_id is None:
        return None
    return user


def consent_items(scope: str) -> list[dict[str, str]]:
    items = []
    for item in scope_to_list(scope) or []:
        parsed = parse_scope(item)
        if isinstance(parsed, FieldScope):
            label_ja, label_en = FIELD_LABELS[parsed.field]
            mode_ja, mode_en = MODE_LABELS[parsed.mode.value]
        else:
            label_ja, label_en, mode_ja, mode_en = RESOURCE_LABELS[parsed]
        items.append(
            {
                "scope": item,
                "label_ja": label_ja,
                "label_en": label_en,
                "mode_ja": mode_ja,
                "mode_en": mode_en,
            }
        )
    return items


def login_redirect(params: dict[str, str]) -> RedirectResponse:
    target = "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if k in AUTHORIZE_PARAMS})
    return RedirectResponse("/oauth/login?" + urlencode({"next": target}), status_code=303)


# -- routes ---------------------------------------------------------------------------------------


@router.get("/.well-known/oauth-authorization-server")
def server_metadata(request: Request) -> JSONResponse:
    """RFC 8414 authorisation server metadata."""
    return JSONResponse(dict(metadata(request.app.state.settings)))


@router.get("/oauth/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    """The company owner's login form."""
    return page(
        "login.html",
        csrf_token=csrf_token(request.session),
        next=safe_next(next) or "",
        username="",
        error=None,
    )


@router.post("/oauth/login", response_class=HTMLResponse)
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

    def check(server: AppwardenServer) -> int | str:
        user = authenticate_user(server.session, username, form.get("password", ""))
        if user is None or user.role != "company_owner" or user.company_id is None:
            reason = "bad_credentials" if user is None else "not_company_owner"
            record(server.session, EventTag.USER_LOGIN_FAILED, actor=username, reason=reason, via="oauth")
            return reason
        record(
            server.session, EventTag.USER_LOGIN, actor=user.username, company_id=user.company_id, via="oauth"
        )
        return user.id

    outcome = await _in_transaction(request, check)
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


@router.post("/oauth/logout", response_class=HTMLResponse)
async def logout(request: Request) -> HTMLResponse:
    http = await read_request(request)
    if not csrf_ok(request.session, dict(http.form).get("csrf_token")):
        return message(403, ("エラー", "Error"), ("CSRF の確認に失敗しました。", "CSRF check failed."))
    request.session.clear()
    return message(200, ("ログアウトしました", "Logged out"), ("ログアウトしました。", "You are logged out."))


@router.get("/oauth/authorize", response_class=HTMLResponse)
async def authorize_page(request: Request) -> Response:
    """Validate the authorisation request, then log the owner in or show the consent form."""
    http = await read_request(request)
    session = request.session
    return await _in_transaction(request, lambda server: _consent(server, http, session, submit=False))


@router.post("/oauth/authorize", response_class=HTMLResponse)
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
    if app.listing_state != ListingState.LISTED.value:
        return message(
            403,
            ("このアプリは利用できません", "This app is not available"),
            (f"アプリの状態: {app.listing_state}", f"The app is {app.listing_state}."),
            error_code=f"app_{app.listing_state}",
        )
    user = current_owner(server, session)
    if user is None:
        return login_redirect(params)
    if not submit:
        company = server.store.company(user.company_id or 0)
        return page(
            "consent.html",
            app=app,
            company=company,
            user=user,
            items=consent_items(oauth_request.scope),
            params=sorted(params.items()),
            redirect_uri=grant.redirect_uri,
            csrf_token=csrf_token(session),
        )
    requested = scope_to_list(oauth_request.scope) or []
    ticked = set(oauth_request.payload.datalist.get("grant", []))
    consented = [s for s in requested if s in ticked]
    approved = oauth_request.payload.data.get("decision") == "approve" and bool(consented)
    if approved:
        connection = server.store.grant_connection(app, user, consented)
        oauth_request.consented_scope = " ".join(s for s in consented if s in connection.scopes)
    result = server.create_authorization_response(
        oauth_request, grant_user=user if approved else None, grant=grant
    )
    return to_response(result)


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    """RFC 6749 token endpoint: ``authorization_code`` (with PKCE) and rotating ``refresh_token``."""
    http = await read_request(request)
    return to_response(await _in_transaction(request, lambda s: _safe(lambda: s.create_token_response(http))))


@router.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    """RFC 7009 revocation (client-authenticated)."""
    http = await read_request(request)
    return to_response(
        await _in_transaction(
            request, lambda s: _safe(lambda: s.create_endpoint_response("revocation", http))
        )
    )


@router.post("/oauth/introspect")
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
