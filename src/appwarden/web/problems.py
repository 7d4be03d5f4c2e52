"""RFC 9457 problem responses: every error over HTTP goes through here."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from appwarden.errors import AppwardenError

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger()


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def _headers(exc: AppwardenError) -> dict[str, str] | None:
    if exc.status == 429 and "retry_after" in exc.extra:
        return {"Retry-After": str(exc.extra["retry_after"])}
    if exc.status == 401:
        return {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.detail}"'}
    if exc.status == 403 and exc.code == "insufficient_scope":
        return {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
    return None


def error_response(exc: AppwardenError, instance: str) -> JSONResponse:
    """The problem response for ``exc`` (with ``WWW-Authenticate`` for a 401), as the routes answer it."""
    return problem_response(exc.problem(instance), _headers(exc))


def install(app: FastAPI) -> None:
    """Map our errors, validation errors, HTTP errors and bugs to problem+json."""

    @app.exception_handler(AppwardenError)
    async def _domain(request: Request, exc: AppwardenError) -> JSONResponse:
        return error_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "invalid request"
        return problem_response(
            {
                "type": "https://appwarden.dev/problems/invalid_parameter",
                "title": "Invalid parameter",
                "status": 422,
                "detail": detail,
                "code": "invalid_parameter",
                "instance": request.url.path,
                "errors": errors,
            }
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(
            {
                "type": f"https://appwarden.dev/problems/{code}",
                "title": str(exc.detail) if exc.detail else "Error",
                "status": exc.status_code,
                "detail": str(exc.detail),
                "code": code,
                "instance": request.url.path,
            },
            dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # A plain traceback (appwarden.logs: never locals); the route's template, not the path's ids.
        route = getattr(request.scope.get("route"), "path", "(unmatched)")
        log.error("unhandled error", route=route, exc_info=exc)
        return problem_response(
            {
                "type": "https://appwarden.dev/problems/internal_error",
                "title": "Internal error",
                "status": 500,
                "detail": "an internal error occurred; it has been logged",
                "code": "internal_error",
                "instance": request.url.path,
            }
        )
