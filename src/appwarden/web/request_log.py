"""One log line per HTTP request, with a request id, and nothing personal in it.

The line names the route's template (``/v1/customers/{customer_id}``), never the concrete path or the
query string: those carry pseudonymous ids, phone numbers and cursors. Every log line written while the
request runs carries the same ``request_id``, which is also returned as ``X-Request-Id``.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("appwarden.request")
# An incoming id is kept only if it cannot smuggle anything into a log line.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


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
        request_id = incoming if _SAFE_ID.fullmatch(incoming) else uuid.uuid4().hex
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                client = scope.get("client")
                log.info(
                    "request",
                    method=scope.get("method"),
                    route=_route_template(scope),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    client=client[0] if client else None,
                )
