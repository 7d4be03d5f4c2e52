"""RFC 9457 problem responses: every error over HTTP goes through here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from appwarden.errors import AppwardenError

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger()

# The problem document as OpenAPI describes it (components/schemas/Problem, added by ``install``).
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is a stable machine-readable slug. Some problems "
    "carry more members (`errors`, `parameter`, `request_id`, `required_scope`…).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["location", "message"],
                "properties": {"location": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}
PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
VALIDATION = "`invalid_parameter`: a parameter or the body does not match this schema."
MALFORMED = "`bad_request`: the body cannot be read (not UTF-8, malformed multipart…)."
TOO_LARGE = "`payload_too_large`: the body is over this route's cap (`limit` says how many bytes)."


def problem_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: each status documented as a problem+json document."""
    return {
        status: {"description": text, "content": PROBLEM_CONTENT} for status, text in descriptions.items()
    }


ADMIN_AUTH = {401: "`invalid_admin_key`: the admin API key (`Authorization: Bearer …`) is missing or wrong."}


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        _encodable(body), status_code=body["status"], media_type=PROBLEM_JSON, headers=headers
    )


def _encodable(value: Any) -> Any:
    """``value`` with every string UTF-8 encodable: a problem may echo client input, and a lone surrogate
    (JSON ``"\\ud800"``) in it would make rendering the 4xx fail with a 500."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


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


def _document(app: FastAPI) -> None:
    """Make the OpenAPI say what the handlers below send, in one place so that no route can get it wrong:
    FastAPI documents every validation error as ``application/json`` ``HTTPValidationError``, but they go
    out as problem+json; and a body that cannot be parsed at all (400) or is over the route's cap (413,
    ``web.body_limit``) is a status it does not document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "requestBody" in operation:
                    responses.setdefault("400", {"description": MALFORMED, "content": PROBLEM_CONTENT})
                    responses.setdefault("413", {"description": TOO_LARGE, "content": PROBLEM_CONTENT})
                response = responses.get("422")
                if response is not None:
                    if response.get("description") in (None, "Validation Error"):
                        response["description"] = VALIDATION
                    response["content"] = PROBLEM_CONTENT
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["Problem"] = PROBLEM_SCHEMA
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Map our errors, validation errors, HTTP errors and bugs to problem+json (and document them so)."""
    _document(app)

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
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
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
