"""The Starlette side of the Authlib adapter: request snapshot in, ``(status, body, headers)`` out.

The async route reads the body (:func:`read_request`); the snapshot is immutable, so the sync work
(argon2, SQL) can run in a worker thread. :class:`StarletteOAuth2Request` is what Authlib reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from fastapi import Request
from fastapi.responses import Response

from appwarden.oauth.models import Connection


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the async route read from the wire: enough for Authlib, safe to hand to a worker thread."""

    method: str
    path: str
    query_string: str
    headers: Any  # a case-insensitive mapping (Starlette ``Headers``)
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Authlib's answer: status, body (dict for JSON, str otherwise) and headers."""

    status: int
    body: Any
    headers: list[tuple[str, str]]


class _Payload(OAuth2Payload):
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """Authlib's request over a :class:`HttpRequest`: GET reads the query, POST reads the form body."""

    def __init__(self, http: HttpRequest, base_url: str) -> None:
        # The public URL is the configured base URL, not what a proxy handed us: Authlib refuses
        # non-TLS URLs except loopback, which is exactly the policy we want.
        uri = base_url.rstrip("/") + http.path + (f"?{http.query_string}" if http.query_string else "")
        super().__init__(method=http.method, uri=uri, headers=http.headers)
        self._args = dict(http.query)
        self._form = dict(http.form)
        self.payload = _Payload(http.form if http.method == "POST" else http.query)
        self.consented_scope: str | None = None
        self.connection: Connection | None = None
        self.family_id: str | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


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
