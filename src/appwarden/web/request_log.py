"""One log line per HTTP request, with a request id, and nothing personal in it.

The line names the route's template (``/v1/customers/{customer_id}``), never the concrete path or the
query string: those carry pseudonymous ids, phone numbers and cursors. Every log line written while the
request runs carries the same ``request_id``, which is also returned as ``X-Request-Id`` and is the id
the ledger records the request's deliveries under (:func:`request_id`). The id is always made
here: a client's own ``X-Request-Id`` is logged beside it (``upstream_id``), never adopted, so no app
can choose the id its deliveries are recorded under.
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar

import structlog
from authlib.common.security import generate_token
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("appwarden.request")
# A client's own id is logged (as upstream_id) only if it cannot smuggle anything into a log line.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


_current: ContextVar[str | None] = ContextVar("appwarden_request_id", default=None)


def new_request_id() -> str:
    """A fresh request id, ``req_`` and 24 random characters."""
    return f"req_{generate_token(24)}"


def request_id() -> str:
    """The id of the request being served (the one in its log lines and ``X-Request-Id``); a fresh one
    outside a request (the worker thread of a sync route inherits the request's context)."""
    return _current.get() or new_request_id()


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(unmatched)"


class RequestLog:
    """ASGI middleware: request id in, one structured ``request`` line out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        rid = new_request_id()
        token = _current.set(rid)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        context = {"request_id": rid}
        if _SAFE_ID.fullmatch(incoming):
            context["upstream_id"] = incoming
        with structlog.contextvars.bound_contextvars(**context):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                _current.reset(token)
                client = scope.get("client")
                log.info(
                    "request",
                    method=scope.get("method"),
                    route=_route_template(scope),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    client=client[0] if client else None,
                )
