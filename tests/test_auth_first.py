"""Authentication before any body is read: an unauthenticated sender gets 401 and its body is never received.

The real ASGI app is driven directly with a ``receive`` callable that records whether it was called, so
"never read" is observed, not inferred: a body that is not received cannot be parsed or spooled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.marketplace import service as marketplace
from conftest import ADMIN_KEY, World


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    body_read: bool


async def _call(app: FastAPI, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
    read = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return Answer(start["status"], response_headers, json.loads(content) if content else {}, read)


def call(app: FastAPI, method: str, path: str, headers: dict[str, str], body: bytes = b"{}") -> Answer:
    return anyio.run(_call, app, method, path, headers, body)


JSON = {"Content-Type": "application/json"}
UPLOAD = {"Content-Type": "multipart/form-data; boundary=b"}


@pytest.mark.parametrize(
    ("path", "headers", "code"),
    [
        ("/admin/apps", JSON, "invalid_admin_key"),
        ("/admin/apps", {**JSON, "Authorization": "Bearer not-the-admin-key"}, "invalid_admin_key"),
        ("/admin/incidents", {**JSON, "Authorization": "Basic YWRtaW46YWRtaW4="}, "invalid_admin_key"),
        ("/admin/attributions", UPLOAD, "invalid_admin_key"),
        ("/v1/detokenize", JSON, "invalid_token"),
        ("/v1/detokenize", {**JSON, "Authorization": "Bearer"}, "invalid_token"),
        ("/v1/detokenize", {**JSON, "Authorization": "Bearer no-such-token"}, "invalid_token"),
        ("/canary/hits", JSON, "invalid_webhook_key"),
        ("/canary/hits", {**JSON, "Authorization": f"Bearer {ADMIN_KEY}"}, "invalid_webhook_key"),
    ],
)
def test_an_unauthenticated_body_is_refused_unread(
    settings: Settings, db: Database, path: str, headers: dict[str, str], code: str
) -> None:
    app = create_app(settings, db)
    answer = call(app, "POST", path, headers, body=b'{"slug": "x"}' * 1000)
    assert answer.status == 401 and answer.body["code"] == code
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert not answer.body_read


def test_the_early_refusal_is_the_routes_own_answer(settings: Settings, db: Database) -> None:
    """Same problem body and ``WWW-Authenticate`` as the route gives (seen on a bodiless GET it answers)."""
    app = create_app(settings, db)
    early = call(app, "POST", "/admin/apps", JSON)
    with TestClient(app) as client:
        route = client.get("/admin/apps")
    assert route.status_code == 401
    assert {**early.body, "instance": None} == {**route.json(), "instance": None}
    assert early.headers["www-authenticate"] == route.headers["www-authenticate"]


def test_an_authenticated_body_reaches_the_route(
    settings: Settings, db: Database, admin_headers: dict[str, str], world: World
) -> None:
    app = create_app(settings, db)
    answer = call(app, "POST", "/admin/apps", {**JSON, **admin_headers}, body=b'{"slug": 1}')
    assert answer.body_read and answer.status == 422  # validated by the route: the body was parsed
    token = str(world.connect("invoice-plus", world.tenants[0])["access_token"])
    answer = call(app, "POST", "/v1/detokenize", {**JSON, "Authorization": f"Bearer {token}"})
    assert answer.body_read and answer.status == 422


def test_a_refused_app_is_left_to_the_route_which_records_it(
    settings: Settings, db: Database, world: World
) -> None:
    """The early check refuses only bad credentials; a suspended app's good token gets the route's 403."""
    token = str(world.connect("invoice-plus", world.tenants[0])["access_token"])
    with db.session() as session:
        app_row = marketplace.get_app(session, "invoice-plus")
        marketplace.suspend_app(session, app_row, actor="test")
    app = create_app(settings, db)
    answer = call(app, "POST", "/v1/detokenize", {**JSON, "Authorization": f"Bearer {token}"})
    assert answer.status == 403 and answer.body["code"] == "app_restricted"
    with db.session() as session:
        refused = session.scalars(select(SecurityEvent).where(SecurityEvent.tag == "broker:call:refused"))
        assert [e.data["path"] for e in refused] == ["/v1/detokenize"]  # recorded once, by the route
