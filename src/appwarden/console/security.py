"""Browser-facing protections of every ``/console`` response: security headers, cookies, CSRF.

- Headers (:class:`ConsoleHeaders`): a CSP with no inline script or style (htmx and the stylesheet are
  served from ``/console/static``), no framing (CSP ``frame-ancestors 'none'`` and ``X-Frame-Options:
  DENY`` for older browsers), ``nosniff``, no referrer to other sites, no caching of pages, and HSTS
  when the console is served over https.
- Cookies: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` (and the ``__Host-`` prefix) when ``base_url``
  is https.
- CSRF: a signed-in session's forms carry its synchroniser token (``console.sessions``); forms shown
  before sign-in (login, language) carry an HMAC of a random pre-session cookie (the signed
  double-submit pattern), so a cross-site form can neither read nor forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appwarden.config import Settings

PREFIX = "/console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class ConsoleHeaders:
    """Adds :data:`HEADERS` (and HSTS over https) to every response under ``/console``; pages are not
    cached (they show personal account state), static files may be for an hour."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        extra = {"strict-transport-security": "max-age=31536000"} if https else {}
        self.headers = [(k.encode(), v.encode()) for k, v in (HEADERS | extra).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            return await self.app(scope, receive, send)
        cache = b"public, max-age=3600" if path.startswith(PREFIX + "/static/") else b"no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = set(self.names)
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = [*kept, *self.headers, (b"cache-control", cache)]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @property
    def names(self) -> list[bytes]:
        return [k for k, _ in self.headers] + [b"cache-control"]


def https(settings: Settings) -> bool:
    """Whether the console is served over https (cookies get ``Secure`` and ``__Host-``)."""
    return settings.base_url.startswith("https://")


def cookie_name(settings: Settings, name: str) -> str:
    """``name``, with the ``__Host-`` prefix over https (host-only, path /, Secure: no subdomain or
    plain-http page can set it)."""
    return f"__Host-{name}" if https(settings) else name


SESSION_COOKIE = "appwarden_console"
PRESESSION_COOKIE = "appwarden_console_pre"
LANGUAGE_COOKIE = "appwarden_lang"


def set_cookie(response: Response, settings: Settings, name: str, value: str, *, max_age: int | None) -> None:
    """Set one of the console's cookies with the flags above."""
    response.set_cookie(
        cookie_name(settings, name),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=https(settings),
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        cookie_name(settings, name), path="/", httponly=True, samesite="lax", secure=https(settings)
    )


def read_cookie(request: Request, settings: Settings, name: str) -> str | None:
    return request.cookies.get(cookie_name(settings, name))


def presession_value(request: Request, settings: Settings) -> tuple[str, bool]:
    """The pre-session cookie's value, and whether it is new (the response must then set it)."""
    value = read_cookie(request, settings, PRESESSION_COOKIE)
    if value and 20 <= len(value) <= 100:
        return value, False
    return secrets.token_urlsafe(32), True


def presession_token(settings: Settings, value: str) -> str:
    """The form token for a pre-session cookie value: an HMAC under the master key."""
    return hmac.new(settings.master_key, b"console-form:" + value.encode(), hashlib.sha256).hexdigest()


def tokens_match(expected: str | None, presented: str | None) -> bool:
    """Constant-time comparison; a missing side never matches."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())
