"""One error hierarchy, mapped to RFC 9457 problems over HTTP and to exit codes in the CLI.

Every expected failure is an :class:`AppwardenError`; anything else is a bug and
is shown as a generic 500 problem (never a traceback).
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppwardenError(Exception):
    """Base of every error a user can cause. ``code`` is a stable machine-readable slug."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    exit_code: ClassVar[int] = 1

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        body: dict[str, Any] = {
            "type": f"https://appwarden.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class InvalidInput(AppwardenError):
    status = 422
    code = "invalid_parameter"
    title = "Invalid parameter"


class Unauthenticated(AppwardenError):
    status = 401
    code = "invalid_token"
    title = "Authentication required"


class Forbidden(AppwardenError):
    status = 403
    code = "insufficient_scope"
    title = "Forbidden"


class NotFound(AppwardenError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppwardenError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(AppwardenError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class TooManyRequests(AppwardenError):
    """Over a rate limit or a login throttle; ``retry_after`` (seconds) becomes ``Retry-After``."""

    status = 429
    code = "too_many_requests"
    title = "Too many requests"


class Unavailable(AppwardenError):
    """A dependency the security decision needs is down: fail closed."""

    status = 503
    code = "unavailable"
    title = "Service unavailable"


class UnsupportedMediaType(AppwardenError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"
