"""Request-body caps for every route, enforced while the body streams in.

Every path gets ``default`` bytes (JSON bodies and form posts are small); a path listed in ``overrides``
(exact match: the dump upload) gets its own cap. Form and JSON parsing read (and spool) a whole body
before any route code runs, so a cap checked in the route would only refuse a huge body after it was
stored. This middleware refuses an announced ``Content-Length`` over the cap before reading a byte, and
stops a body without one (chunked) as soon as it passes the cap (answering 413 itself and telling the
app the client went away): 413 ``payload_too_large`` either way.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appwarden.errors import PayloadTooLarge
from appwarden.web.problems import problem_response


class BodyLimit:
    """Cap every request body at ``default`` bytes, or at ``overrides[path]`` for the paths listed."""

    def __init__(self, app: ASGIApp, *, default: int, overrides: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.overrides = dict(overrides or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.overrides.get(scope.get("path", ""), self.default)
        too_large = PayloadTooLarge(f"the request body is over the {limit:,}-byte limit", limit=limit)
        announced = dict(scope.get("headers", [])).get(b"content-length", b"")
        if announced.isdigit() and int(announced) > limit:
            response = problem_response(too_large.problem(scope["path"]))
            return await response(scope, receive, send)
        seen, refused = 0, False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Answer 413 now and tell the app the client left: whatever it answers is dropped.
                    refused = True
                    await problem_response(too_large.problem(scope["path"]))(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)
