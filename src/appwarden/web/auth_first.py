"""Authentication before any request body is read.

FastAPI reads and parses a route's body (JSON, form, multipart) before it runs the route's dependencies,
so an authentication dependency alone lets an unauthenticated client make the server read, spool and
parse whatever it sends. This middleware runs the same credential checks first, on the request's headers
only: a request to a guarded path whose check refuses it is answered with that check's problem (401 with
its ``WWW-Authenticate``, exactly as the route would answer) without a byte of its body being received.

``checks`` maps a path to its check: a key ending in ``/`` guards every path under it, any other key
that exact path. A check is a plain function of the request (headers, ``request.app.state``) that raises
an :class:`~appwarden.errors.AppwardenError` to refuse; it runs in the thread pool because a token check
reads the database. It is given a request with no receive channel, so it cannot read the body even by
mistake. Only methods that carry a body are checked here (``GET``/``HEAD``/``OPTIONS`` have none to
parse); the routes' own dependencies still authenticate every request, in full.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from appwarden.errors import AppwardenError
from appwarden.web.problems import error_response

Check = Callable[[Request], None]
BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


class AuthFirst:
    """Refuse a request to a guarded path before reading its body when its credentials are refused."""

    def __init__(self, app: ASGIApp, *, checks: Mapping[str, Check]) -> None:
        self.app = app
        self.exact = {path: check for path, check in checks.items() if not path.endswith("/")}
        # Longest prefix first, so a more specific guard wins over a broader one.
        self.prefixes = sorted(
            ((path, check) for path, check in checks.items() if path.endswith("/")), key=lambda p: -len(p[0])
        )

    def check_for(self, path: str) -> Check | None:
        """The check guarding ``path``, or None."""
        if path in self.exact:
            return self.exact[path]
        return next((check for prefix, check in self.prefixes if path.startswith(prefix)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        check = None
        if scope["type"] == "http" and scope["method"] not in BODILESS:
            check = self.check_for(scope["path"])
        if check is None:
            return await self.app(scope, receive, send)
        request = Request(scope)  # no receive channel: the check sees headers only
        try:
            await run_in_threadpool(check, request)
        except AppwardenError as exc:
            return await error_response(exc, request.url.path)(scope, receive, send)
        await self.app(scope, receive, send)
