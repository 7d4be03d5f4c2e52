"""``probing`` (refusal bursts, refresh-token reuse, calls after revocation and after a kill) and
``restricted_token_volume``, through the real ASGI app: each pattern fires with its numbers and
yardstick, and an app's normal traffic (paging, refreshing, a slip, a few mints) raises nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.demo.oauth_client import OAuthFlowError, connect_app, refresh
from appwarden.monitor.declarations import DeclaredVolume, declared_volume_source
from appwarden.monitor.models import DeliveryHour
from appwarden.monitor.policy import MonitorPolicy
from appwarden.monitor.runtime import Monitor, monitor_of
from appwarden.oauth.models import Token
from conftest import OWNER_PASSWORD, World
from test_monitor_detectors import alerts

APP = "invoice-plus"  # approved customers.name:raw, customers.phone:raw, transactions:read
PURPOSE = "print the delivery slip for order 1042"


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture
def guarded(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The real app with a monitor whose thresholds the tests name (defaults otherwise)."""
    app = create_app(settings, db)
    app.state.monitor = Monitor(
        settings,
        db,
        MonitorPolicy(
            probing_refusals_per_hour=10,
            # 100,000 declared people a day (the settings' stand-in) × this: 4 people a day raw.
            restricted_token_people_factor=0.00004,
            restricted_token_min_people=1,
        ),
    )
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def run(client: TestClient) -> list[str]:
    """One background run; each later one a run interval on (a run within half an interval skips)."""
    monitor = monitor_of(client.app)  # type: ignore[arg-type]
    runs = RUNS[id(monitor)] = RUNS.get(id(monitor), -1) + 1
    report = monitor.run_once(utcnow() + timedelta(seconds=monitor.policy.run_interval_seconds * runs))
    assert report.ran
    return report.raised


RUNS: dict[int, int] = {}


def ids(client: TestClient, token: dict[str, Any]) -> list[str]:
    response = client.get("/v1/customers", params={"limit": 12}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


def mint(client: TestClient, token: dict[str, Any], customers: list[str]) -> None:
    body = {"fields": ["name"], "purpose": PURPOSE, "customers": customers}
    response = client.post("/v1/restricted-tokens", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text


def revoke(client: TestClient, world: World, token: dict[str, Any]) -> None:
    _, client_id, secret = world.apps[APP]
    response = client.post("/oauth/revoke", data={"token": token["access_token"]}, auth=(client_id, secret))
    assert response.status_code == 200, response.text


def test_normal_traffic_raises_nothing(guarded: TestClient, world: World) -> None:
    token = world.connect(APP, world.tenants[0])
    other = world.connect("booking-go", world.tenants[1])
    rows = ids(guarded, token)
    ids(guarded, other)
    mint(guarded, token, rows[:2])
    mint(guarded, token, rows[1:4])  # 4 distinct people: at the allowance, not over it
    assert guarded.get("/v1/customers/cus_deleted", headers=bearer(token)).status_code == 404  # a slip
    assert run(guarded) == []
    revoke(guarded, world, token)
    for _ in range(2):  # an in-flight call and one retry before the app notices
        assert guarded.get("/v1/customers", headers=bearer(token)).status_code == 401
    assert run(guarded) == [] and alerts(world.db) == []


def test_a_burst_of_refusals_is_probing(guarded: TestClient, world: World) -> None:
    token = world.connect(APP, world.tenants[0])
    for i in range(10):  # guessing ids: every answer the same 404
        assert guarded.get(f"/v1/customers/cus_guess{i}", headers=bearer(token)).status_code == 404
    (raised,) = run(guarded)
    (alert,) = alerts(world.db, "probing")
    assert alert["id"] == raised and alert["severity"] == "high"
    assert alert["observed"] == {"refused_calls": 10}
    assert alert["baseline"] == {"refused_calls_per_hour_threshold": 10}


def test_calls_after_revocation_are_counted_apart_and_alerted(guarded: TestClient, world: World) -> None:
    token = world.connect(APP, world.tenants[0])
    expired = world.connect(APP, world.tenants[1])
    ids(guarded, token)
    revoke(guarded, world, token)
    for _ in range(5):  # the default threshold: a client that ignores its 401s
        assert guarded.get("/v1/customers", headers=bearer(token)).status_code == 401
    with world.db.session() as session:  # an expired token is an ordinary 401, not a late call
        session.execute(
            update(Token)
            .where(Token.access_token_hash.is_not(None), Token.company_id == world.tenants[1].company.id)
            .values(access_expires_at=utcnow())
        )
    for _ in range(6):
        response = guarded.get("/v1/customers", headers=bearer(expired))
        assert response.status_code == 401 and response.json()["code"] == "token_expired"
    (raised,) = run(guarded)
    (alert,) = alerts(world.db, "probing")
    assert alert["id"] == raised
    assert alert["company"] == world.tenants[0].company.public_id and alert["severity"] == "medium"
    assert alert["observed"] == {"pattern": "after_revocation", "calls": 5}
    assert alert["baseline"] == {"calls_per_hour_threshold": 5, "expected_calls": 0}
    with world.db.session() as session:
        rows = {r.company_id: r for r in session.scalars(select(DeliveryHour))}
    assert (
        rows[world.tenants[0].company.id].after_revocation,
        rows[world.tenants[0].company.id].refused_401,
    ) == (
        5,
        5,
    )
    assert (
        rows[world.tenants[1].company.id].after_revocation,
        rows[world.tenants[1].company.id].refused_401,
    ) == (
        0,
        6,
    )
    for _ in range(3):  # still calling in the same hour: the same finding, raised once
        guarded.get("/v1/customers", headers=bearer(token))
    assert run(guarded) == [] and len(alerts(world.db)) == 1


def test_calls_after_a_kill_are_alerted_on_the_first_few(
    guarded: TestClient, world: World, admin_headers: dict[str, str]
) -> None:
    token = world.connect(APP, world.tenants[0])
    honest = world.connect("booking-go", world.tenants[0])
    rows = ids(guarded, token)
    killed = guarded.post(
        "/admin/incidents", json={"apps": [APP], "reason": "dump found"}, headers=admin_headers
    )
    assert killed.status_code == 201, killed.text
    for path in ("/v1/customers", f"/v1/customers/{rows[0]}", "/v1/transactions"):  # still calling
        response = guarded.get(path, headers=bearer(token))
        assert response.status_code == 403 and response.json()["code"] == "app_delisted"
    ids(guarded, honest)
    (raised,) = run(guarded)
    (alert,) = alerts(world.db, "probing")
    assert alert["id"] == raised and alert["app"] == APP and alert["severity"] == "high"
    assert alert["observed"] == {"pattern": "after_kill", "calls": 3}
    assert alert["baseline"] == {"calls_per_hour_threshold": 3, "expected_calls": 0}


def test_refresh_token_reuse_is_refused_revokes_the_family_and_raises_an_alert_at_once(
    guarded: TestClient, world: World
) -> None:
    _, client_id, secret = world.apps[APP]
    creds = {"client_id": client_id, "client_secret": secret}
    grant = connect_app(
        guarded,
        **creds,
        redirect_uri="https://invoice-plus.example/cb",
        username="owner0",
        password=OWNER_PASSWORD,
        scope="customers.name:raw transactions:read",
    )
    second = refresh(guarded, **creds, refresh_token=grant["refresh_token"])  # normal rotation
    assert alerts(world.db) == []
    with pytest.raises(OAuthFlowError) as err:  # the first refresh token, replayed by a second holder
        refresh(guarded, **creds, refresh_token=grant["refresh_token"])
    assert err.value.error == "invalid_grant"
    assert guarded.get("/v1/customers", headers=bearer(second)).status_code == 401  # the family is revoked
    (alert,) = alerts(world.db, "probing")  # raised by the token endpoint, before any background run
    assert alert["severity"] == "high" and alert["company"] == world.tenants[0].company.public_id
    assert alert["observed"] == {"pattern": "token_reuse", "kind": "refresh_token", "tokens_revoked": 2}
    assert alert["baseline"] == {"expected_reuses": 0}
    with pytest.raises(OAuthFlowError):  # replayed again: the same grant's reuse, one alert
        refresh(guarded, **creds, refresh_token=grant["refresh_token"])
    assert len(alerts(world.db)) == 1


def test_restricted_tokens_for_more_people_than_allowed_in_a_day(guarded: TestClient, world: World) -> None:
    token = world.connect(APP, world.tenants[0])
    calm = world.connect(APP, world.tenants[1])
    rows = ids(guarded, token)
    mint(guarded, token, rows[:3])
    mint(guarded, token, rows[2:5])  # 5 distinct people over two mints: over 4
    calm_rows = ids(guarded, calm)
    mint(guarded, calm, calm_rows[:4])  # at the allowance
    (raised,) = run(guarded)
    (alert,) = alerts(world.db, "restricted_token_volume")
    assert alert["id"] == raised and alert["company"] == world.tenants[0].company.public_id
    assert alert["severity"] == "high"
    assert alert["observed"] == {"restricted_people_per_day": 5}
    assert alert["baseline"] == {
        "restricted_people_per_day": 4,
        "people_per_day_peak": 100_000,
        "factor": 0.00004,
        "min_people": 1,
        "declared": False,
    }
    assert alert["ledger_entries"]  # the mints' entries in the ledger
    mint(guarded, token, rows[5:7])  # still minting today: the same finding
    assert run(guarded) == []


def test_a_declared_restricted_token_figure_is_the_yardstick(
    guarded: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = DeclaredVolume(10_000, 100_000, 120, 1_200, restricted_people_per_day=2)
    monkeypatch.setattr(declared_volume_source, "_source", lambda session, app_id, company_id: declared)
    token = world.connect(APP, world.tenants[0])
    rows = ids(guarded, token)
    mint(guarded, token, rows[:3])
    run(guarded)
    (alert,) = alerts(world.db, "restricted_token_volume")
    assert alert["observed"] == {"restricted_people_per_day": 3}
    assert alert["baseline"] == {"restricted_people_per_day": 2, "declared": True}
