"""The demo's app client against the real ASGI app: an expired access token is refreshed (rotated)
through the real token endpoint and the call goes through; other failures stop the demo."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.demo.traffic import AppSession, Credentials, DemoError
from appwarden.oauth.models import Connection
from appwarden.oauth.tokens import issue_token
from conftest import World


def _expired_token(world: World, db: Database) -> dict[str, str | int]:
    tenant = world.tenants[0]
    world.connect("invoice-plus", tenant)
    with db.session() as session:
        conn = session.scalar(select(Connection).where(Connection.company_id == tenant.company.id))
        assert conn is not None
        # Issued 1,000 s ago: the access token (900 s) has expired, the refresh token (3,600 s) has not.
        return issue_token(
            session,
            conn,
            " ".join(conn.scopes),
            access_ttl=900,
            refresh_ttl=3600,
            now=utcnow() - timedelta(seconds=1000),
        )


def test_app_session_refreshes_an_expired_token(world: World, db: Database, client: TestClient) -> None:
    token = _expired_token(world, db)
    _, client_id, secret = world.apps["invoice-plus"]
    app = AppSession(client, Credentials(client_id, secret), dict(token))
    body = app.call("GET", "/v1/customers", params={"limit": 5})
    assert len(body["data"]) == 5
    assert set(body["data"][0]) == {"id", "name", "phone"}
    assert app.token["access_token"] != token["access_token"]
    assert app.token["refresh_token"] != token["refresh_token"]  # rotated
    assert app.requests == 2  # the refused call, then the retry


def test_app_session_stops_on_a_refusal(world: World, db: Database, client: TestClient) -> None:
    token = world.connect("invoice-plus", world.tenants[0])
    _, client_id, secret = world.apps["invoice-plus"]
    app = AppSession(client, Credentials(client_id, secret), dict(token))
    with pytest.raises(DemoError, match="403"):
        app.call("GET", "/v1/customers", params={"fields": "email"})  # not granted: no retry
    assert app.requests == 1
