"""The kill switch's reach across workers: two app instances (two ``create_app``, each with its own signal
copy) over one database stand in for two workers. No sleeps: the Redis copy's bound is driven by an
injected clock or set to 0, so "the next request" is deterministic."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.incident.revocation import RevocationSignal, worker_signal
from conftest import World

REDIS_URL = os.environ.get("APPWARDEN_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL,
    reason="set APPWARDEN_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15) to test the Redis path",
)


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def workers(settings: Settings, db: Database) -> Iterator[tuple[TestClient, TestClient]]:
    with (
        TestClient(create_app(settings, db)) as a,
        TestClient(create_app(settings, db)) as b,
    ):
        yield a, b


@pytest.fixture
def db_workers(settings: Settings, db: Database) -> Iterator[tuple[TestClient, TestClient]]:
    yield from workers(settings, db)


@pytest.fixture
def redis_settings(settings: Settings) -> Iterator[Settings]:
    assert REDIS_URL
    configured = settings.model_copy(update={"redis_url": REDIS_URL, "revocation_cache_seconds": 0.0})
    signal = RevocationSignal(configured)
    assert signal.redis is not None
    keys = list(signal.redis.scan_iter(f"{signal.namespace}:*"))
    if keys:  # a previous run on the same database URL (PostgreSQL) must not leak in
        signal.redis.delete(*keys)
    yield configured
    keys = list(signal.redis.scan_iter(f"{signal.namespace}:*"))
    if keys:
        signal.redis.delete(*keys)


def test_database_path_a_kill_through_one_worker_is_seen_by_the_other_at_once(
    db_workers: tuple[TestClient, TestClient], world: World, admin_headers: dict[str, str]
) -> None:
    a, b = db_workers
    token = world.connect("invoice-plus", world.tenants[0])
    assert b.get("/v1/customers", headers=bearer(token)).status_code == 200  # b has served the app
    r = a.post("/admin/incidents", json={"apps": ["invoice-plus"], "reason": "x"}, headers=admin_headers)
    assert r.json()["signal"] == {"via": "database"}
    refused = b.get("/v1/customers", headers=bearer(token))
    assert refused.status_code == 403 and refused.json()["code"] == "app_delisted"
    assert worker_signal(b.app).backend == "database"  # type: ignore[attr-defined]


@pytest.mark.services
@needs_redis
def test_redis_path_a_published_kill_is_refused_by_the_other_worker_on_its_next_request(
    redis_settings: Settings, db: Database, world: World
) -> None:
    """Published to Redis only (the database still says "listed"): the Redis copy alone refuses."""
    token = world.connect("invoice-plus", world.tenants[0])
    other = world.connect("loyalty-stamp", world.tenants[0])
    app_id = world.apps["invoice-plus"][0]
    for a, b in workers(redis_settings, db):
        assert b.get("/v1/customers", headers=bearer(token)).status_code == 200
        sent = worker_signal(a.app).publish([app_id])  # type: ignore[attr-defined]
        assert sent["via"] == "redis+database"
        refused = b.get("/v1/customers", headers=bearer(token))
        assert refused.status_code == 403 and refused.json()["code"] == "app_delisted"
        assert b.get("/v1/customers", headers=bearer(other)).status_code == 200


@pytest.mark.services
@needs_redis
def test_redis_path_kill_switch_through_the_admin_api(
    redis_settings: Settings, db: Database, world: World, admin_headers: dict[str, str]
) -> None:
    token = world.connect("invoice-plus", world.tenants[1])
    for a, b in workers(redis_settings, db):
        assert b.get("/v1/transactions", headers=bearer(token)).status_code == 200
        r = a.post("/admin/incidents", json={"apps": ["invoice-plus"], "reason": "x"}, headers=admin_headers)
        assert r.json()["signal"]["via"] == "redis+database"
        assert b.get("/v1/transactions", headers=bearer(token)).json()["code"] == "app_delisted"


@pytest.mark.services
@needs_redis
def test_redis_copy_is_bounded_by_revocation_cache_seconds(redis_settings: Settings, world: World) -> None:
    now = [0.0]
    bounded = redis_settings.model_copy(update={"revocation_cache_seconds": 0.5})
    reader = RevocationSignal(bounded, clock=lambda: now[0])
    app_id = world.apps["booking-go"][0]
    assert not reader.killed(app_id)  # read at t=0
    RevocationSignal(bounded).publish([app_id])
    now[0] = 0.49
    assert not reader.killed(app_id)  # still within the bound: the copy is not re-read
    now[0] = 0.5
    assert reader.killed(app_id)  # at the bound it is


def test_unreachable_redis_falls_back_to_the_database_never_to_allow(
    settings: Settings, db: Database, world: World, admin_headers: dict[str, str]
) -> None:
    broken = settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0", "revocation_cache_seconds": 0.0}
    )
    token = world.connect("invoice-plus", world.tenants[0])
    other = world.connect("loyalty-stamp", world.tenants[0])
    for a, b in workers(broken, db):
        r = a.post("/admin/incidents", json={"apps": ["invoice-plus"], "reason": "x"}, headers=admin_headers)
        assert r.status_code == 201
        assert r.json()["signal"]["via"] == "database" and "redis_error" in r.json()["signal"]
        assert b.get("/v1/customers", headers=bearer(token)).json()["code"] == "app_delisted"
        assert b.get("/v1/customers", headers=bearer(other)).status_code == 200
