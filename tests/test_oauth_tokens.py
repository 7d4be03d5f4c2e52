"""The token lifecycle: rotation, reuse detection, expiry, revocation, introspection, refusals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from appwarden.broker.auth import authenticate
from appwarden.db.base import utcnow
from appwarden.demo.oauth_client import OAuthFlowError, connect_app, refresh
from appwarden.errors import AppwardenError, Forbidden, Unauthenticated
from appwarden.events.models import SecurityEvent
from appwarden.marketplace import service as marketplace
from appwarden.oauth.models import Connection, Token
from appwarden.oauth.vocabulary import ConnectionStatus
from conftest import OWNER_PASSWORD, World

SCOPE = "customers.name:raw customers.phone:raw transactions:read"


@pytest.fixture
def app_creds(world: World) -> dict[str, str]:
    _, client_id, secret = world.apps["invoice-plus"]
    return {"client_id": client_id, "client_secret": secret}


@pytest.fixture
def grant(client: TestClient, world: World, app_creds: dict[str, str]) -> dict[str, Any]:
    """A token response for owner0's company, obtained through the real pages."""
    return connect_app(
        client,
        **app_creds,
        redirect_uri="https://invoice-plus.example/cb",
        username="owner0",
        password=OWNER_PASSWORD,
        scope=SCOPE,
    )


def works(world: World, access_token: str) -> bool:
    with world.db.session() as session:
        try:
            authenticate(session, access_token)
        except AppwardenError:
            return False
    return True


def introspect(
    client: TestClient, creds: dict[str, str], token: str, hint: str | None = None
) -> dict[str, Any]:
    data = {"token": token} | ({"token_type_hint": hint} if hint else {})
    response = client.post("/oauth/introspect", data=data, auth=(creds["client_id"], creds["client_secret"]))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def tags(world: World) -> list[str]:
    with world.db.session() as session:
        return [e.tag for e in session.scalars(select(SecurityEvent).order_by(SecurityEvent.id))]


def test_refresh_rotates_within_one_family(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    second = refresh(client, **app_creds, refresh_token=grant["refresh_token"])
    assert second["refresh_token"] != grant["refresh_token"]
    assert second["access_token"] != grant["access_token"]
    assert second["expires_in"] == 900
    third = refresh(client, **app_creds, refresh_token=second["refresh_token"])
    assert works(world, third["access_token"])
    with world.db.session() as session:
        rows = list(session.scalars(select(Token).order_by(Token.id)))
    assert len(rows) == 3
    assert len({r.family_id for r in rows}) == 1
    assert [r.rotated_at is not None for r in rows] == [True, True, False]
    assert all(r.revoked_at is None for r in rows)
    assert all(
        (r.refresh_expires_at - r.issued_at) == timedelta(seconds=30 * 24 * 3600)  # type: ignore[operator]
        for r in rows
    )
    assert tags(world).count("connection:token:refreshed") == 2


def test_refresh_may_narrow_but_not_widen_scope(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
            "scope": "customers.email:raw",
        },
        auth=(app_creds["client_id"], app_creds["client_secret"]),
    )
    assert response.json()["error"] == "invalid_scope"
    # A refused scope does not spend the refresh token.
    narrowed = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
            "scope": "customers.name:raw",
        },
        auth=(app_creds["client_id"], app_creds["client_secret"]),
    ).json()
    assert narrowed["scope"] == "customers.name:raw"
    with world.db.session() as session:
        assert authenticate(session, narrowed["access_token"]).scopes == ("customers.name:raw",)


def test_reuse_of_a_rotated_refresh_token_revokes_the_family(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    second = refresh(client, **app_creds, refresh_token=grant["refresh_token"])
    third = refresh(client, **app_creds, refresh_token=second["refresh_token"])
    assert works(world, third["access_token"])
    # An attacker replays the first refresh token.
    with pytest.raises(OAuthFlowError) as err:
        refresh(client, **app_creds, refresh_token=grant["refresh_token"])
    assert err.value.error == "invalid_grant"
    # Everything of that grant is dead, the newest pair included.
    for token in (grant["access_token"], second["access_token"], third["access_token"]):
        assert not works(world, token)
    with pytest.raises(OAuthFlowError):
        refresh(client, **app_creds, refresh_token=third["refresh_token"])
    assert introspect(client, app_creds, third["refresh_token"]) == {"active": False}
    assert "connection:token:reuse-detected" in tags(world)
    with world.db.session() as session:
        assert all(t.revoked_at is not None for t in session.scalars(select(Token)))


def test_reuse_revokes_only_its_own_family(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    other = world.connect("invoice-plus", world.tenants[1])
    refresh(client, **app_creds, refresh_token=grant["refresh_token"])
    with pytest.raises(OAuthFlowError):
        refresh(client, **app_creds, refresh_token=grant["refresh_token"])
    assert works(world, str(other["access_token"]))


def test_access_token_expiry(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    assert introspect(client, app_creds, grant["access_token"])["active"] is True
    with world.db.session() as session:
        session.execute(update(Token).values(access_expires_at=utcnow() - timedelta(seconds=1)))
    with world.db.session() as session, pytest.raises(Unauthenticated) as err:
        authenticate(session, grant["access_token"])
    assert err.value.code == "token_expired"
    assert introspect(client, app_creds, grant["access_token"]) == {"active": False}
    # The refresh token is still good and yields a fresh access token.
    assert works(world, refresh(client, **app_creds, refresh_token=grant["refresh_token"])["access_token"])


def test_refresh_token_expiry_with_an_explicit_clock(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    later = utcnow() + timedelta(days=31)
    client.app.state.oauth_clock = lambda: later  # type: ignore[attr-defined]
    try:
        with pytest.raises(OAuthFlowError) as err:
            refresh(client, **app_creds, refresh_token=grant["refresh_token"])
        assert err.value.error == "invalid_grant"
        assert introspect(client, app_creds, grant["refresh_token"]) == {"active": False}
    finally:
        del client.app.state.oauth_clock  # type: ignore[attr-defined]
    assert introspect(client, app_creds, grant["refresh_token"])["active"] is True


def test_introspection(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    body = introspect(client, app_creds, grant["access_token"])
    tenant = world.tenants[0]
    with world.db.session() as session:
        conn = session.scalar(select(Connection).where(Connection.company_id == tenant.company.id))
        token = session.scalar(select(Token))
    assert conn is not None and token is not None
    assert body["active"] is True
    assert set(body["scope"].split()) == set(SCOPE.split())
    assert body["client_id"] == app_creds["client_id"]
    assert body["token_type"] == "Bearer"
    assert body["sub"] == conn.public_id
    assert body["company"] == tenant.company.public_id
    assert body["exp"] == int(token.access_expires_at.timestamp())
    assert body["iat"] == int(token.issued_at.timestamp())
    assert introspect(client, app_creds, grant["refresh_token"], "refresh_token")["active"] is True
    assert introspect(client, app_creds, "no-such-token") == {"active": False}
    # Another client cannot see this token.
    _, other_id, other_secret = world.apps["booking-go"]
    assert introspect(
        client, {"client_id": other_id, "client_secret": other_secret}, grant["access_token"]
    ) == {"active": False}
    # Introspection needs client authentication.
    anonymous = client.post("/oauth/introspect", data={"token": grant["access_token"]})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"


def test_revoking_an_access_token(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    response = client.post(
        "/oauth/revoke",
        data={"token": grant["access_token"], "token_type_hint": "access_token"},
        auth=(app_creds["client_id"], app_creds["client_secret"]),
    )
    assert response.status_code == 200
    assert not works(world, grant["access_token"])
    assert introspect(client, app_creds, grant["access_token"]) == {"active": False}
    assert "connection:token:revoked" in tags(world)


def test_revoking_a_refresh_token_revokes_the_family(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    second = refresh(client, **app_creds, refresh_token=grant["refresh_token"])
    response = client.post(
        "/oauth/revoke",
        data={
            "token": second["refresh_token"],
            "client_id": app_creds["client_id"],
            "client_secret": app_creds["client_secret"],
        },
    )
    assert response.status_code == 200
    assert not works(world, second["access_token"])
    assert not works(world, grant["access_token"])
    with pytest.raises(OAuthFlowError):
        refresh(client, **app_creds, refresh_token=second["refresh_token"])


def test_revocation_edge_cases(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    auth = (app_creds["client_id"], app_creds["client_secret"])
    assert client.post("/oauth/revoke", data={"token": "unknown"}, auth=auth).status_code == 200
    assert client.post("/oauth/revoke", data={}, auth=auth).json()["error"] == "invalid_request"
    bad_hint = client.post("/oauth/revoke", data={"token": "x", "token_type_hint": "id_token"}, auth=auth)
    assert bad_hint.json()["error"] == "unsupported_token_type"
    unauthenticated = client.post("/oauth/revoke", data={"token": grant["access_token"]})
    assert unauthenticated.json()["error"] == "invalid_client"
    _, other_id, other_secret = world.apps["booking-go"]
    foreign = client.post(
        "/oauth/revoke", data={"token": grant["access_token"]}, auth=(other_id, other_secret)
    )
    assert foreign.status_code == 400
    assert works(world, grant["access_token"])  # another client cannot revoke it


def test_suspended_app_gets_no_tokens(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    with world.db.session() as session:
        app = marketplace.get_app(session, "invoice-plus")
        marketplace.suspend_app(session, app, actor="test")
    with pytest.raises(OAuthFlowError) as err:
        refresh(client, **app_creds, refresh_token=grant["refresh_token"])
    assert err.value.error == "unauthorized_client"
    assert introspect(client, app_creds, grant["access_token"]) == {"active": False}
    with world.db.session() as session, pytest.raises(Forbidden) as forbidden:
        authenticate(session, grant["access_token"])
    assert forbidden.value.code == "app_restricted"  # suspended: restricted, access paused
    # The refresh token was not spent by the refused call: relisting restores the grant.
    with world.db.session() as session:
        app = marketplace.get_app(session, "invoice-plus")
        marketplace.relist_app(session, app, actor="test", reason="test")
    assert works(world, refresh(client, **app_creds, refresh_token=grant["refresh_token"])["access_token"])


def test_inactive_connection_gets_no_tokens(
    client: TestClient, world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    with world.db.session() as session:
        session.execute(update(Connection).values(status=ConnectionStatus.SUSPENDED.value))
    with pytest.raises(OAuthFlowError) as err:
        refresh(client, **app_creds, refresh_token=grant["refresh_token"])
    assert err.value.error == "invalid_grant"
    assert introspect(client, app_creds, grant["access_token"]) == {"active": False}


def test_token_endpoint_errors_are_oauth_json(client: TestClient, app_creds: dict[str, str]) -> None:
    auth = (app_creds["client_id"], app_creds["client_secret"])
    unsupported = client.post("/oauth/token", data={"grant_type": "password"}, auth=auth)
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] == "unsupported_grant_type"
    missing = client.post("/oauth/token", data={"grant_type": "authorization_code"}, auth=auth)
    assert missing.json()["error"] == "invalid_request"
    unknown = client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "nope"}, auth=auth
    )
    assert unknown.json()["error"] == "invalid_grant"
    assert unknown.headers["content-type"].startswith("application/json")


def test_concurrent_refreshes_with_one_token_let_exactly_one_win(
    world: World, app_creds: dict[str, str], grant: dict[str, Any]
) -> None:
    """Two racing uses of one refresh token: one rotation, and the other counts as reuse."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from appwarden.marketplace.models import App
    from appwarden.oauth.service import OAuthStore

    barrier = Barrier(2)
    app_id = world.apps["invoice-plus"][0]

    def attempt() -> bool:
        barrier.wait()
        with world.db.session() as session:
            store = OAuthStore(session, now=utcnow())
            app = session.get(App, app_id)
            assert app is not None
            row = store.refresh_candidate(grant["refresh_token"], app)
            return row is not None and store.claim_rotation(row, app)

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: attempt(), range(2)))
    assert outcomes == [False, True]
    assert not works(world, grant["access_token"])  # the loser's reuse revoked the family
    assert "connection:token:reuse-detected" in tags(world)
