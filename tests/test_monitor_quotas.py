"""Quotas on the data API: requests per minute and people per day, per connection and per app, from the
declared volume (or the settings' stand-in); 429 with Retry-After and a problem body; shared between
workers through Redis when configured."""

from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.marketplace import service as marketplace
from appwarden.marketplace import versions
from appwarden.monitor.runtime import monitor_of
from conftest import World

REDIS_URL = os.environ.get("APPWARDEN_TEST_REDIS_URL")
PROBLEM = "application/problem+json"


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def problem(response: Any, code: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) >= 1
    body: dict[str, Any] = response.json()
    assert body["status"] == 429 and body["code"] == code
    return body


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.services)])
def store(request: pytest.FixtureRequest) -> str | None:
    if request.param == "redis" and not REDIS_URL:
        pytest.skip("APPWARDEN_TEST_REDIS_URL is not set")
    return REDIS_URL if request.param == "redis" else None


def worker(settings: Settings, db: Database, store: str | None, **update: Any) -> TestClient:
    app = create_app(settings.model_copy(update={"redis_url": store, **update}), db)
    if store:
        monitor_of(app).quotas.reset()  # counts of earlier tests live on in Redis under the same ids
    return TestClient(app)


def test_a_connection_over_its_requests_per_minute_gets_429_and_another_company_does_not(
    settings: Settings, db: Database, world: World, store: str | None
) -> None:
    first = bearer(world.connect("invoice-plus", world.tenants[0]))
    second = bearer(world.connect("invoice-plus", world.tenants[1]))
    with worker(settings, db, store, declared_requests_per_minute_peak=3) as client:
        for _ in range(3):
            assert client.get("/v1/customers", headers=first).status_code == 200
        body = problem(client.get("/v1/customers", headers=first), "rate_limited")
        assert body["limit"] == 3 and "this connection" in body["detail"]
        assert client.get("/v1/customers", headers=second).status_code == 200  # its own quota


def test_the_app_as_a_whole_is_held_to_its_ceiling_over_all_companies(
    settings: Settings, db: Database, world: World, store: str | None
) -> None:
    tokens = [bearer(world.connect("invoice-plus", t)) for t in world.tenants]
    other_app = bearer(world.connect("booking-go", world.tenants[0]))
    with worker(settings, db, store, app_requests_per_minute_max=4) as client:
        for _ in range(2):
            for headers in tokens:
                assert client.get("/v1/customers", headers=headers).status_code == 200
        body = problem(client.get("/v1/customers", headers=tokens[1]), "rate_limited")
        assert "this app" in body["detail"]
        assert client.get("/v1/customers", headers=other_app).status_code == 200


def test_a_page_that_would_exceed_people_per_day_is_refused_whole_and_says_how_many_are_left(
    settings: Settings, db: Database, world: World, store: str | None
) -> None:
    headers = bearer(world.connect("invoice-plus", world.tenants[0]))
    with worker(settings, db, store, declared_people_per_day_peak=8) as client:
        page = client.get("/v1/customers", params={"limit": 5}, headers=headers)
        assert page.status_code == 200 and len(page.json()["data"]) == 5
        cursor = page.json()["next_cursor"]
        body = problem(
            client.get("/v1/customers", params={"limit": 5, "cursor": cursor}, headers=headers),
            "people_quota_exceeded",
        )
        assert body["remaining"] == 3 and body["limit"] == 8
        smaller = client.get("/v1/customers", params={"limit": 3, "cursor": cursor}, headers=headers)
        assert smaller.status_code == 200 and len(smaller.json()["data"]) == 3
        problem(
            client.get(f"/v1/customers/{page.json()['data'][0]['id']}", headers=headers),
            "people_quota_exceeded",
        )
    # Nothing refused reached the ledger: two pages recorded, 8 people.
    from appwarden.ledger.queries import list_entries

    entries = list_entries(db)["data"]
    assert [e["persons"] for e in entries] == [5, 3]


@pytest.mark.services
def test_two_workers_share_the_counts_through_redis(settings: Settings, db: Database, world: World) -> None:
    if not REDIS_URL:
        pytest.skip("APPWARDEN_TEST_REDIS_URL is not set")
    headers = bearer(world.connect("invoice-plus", world.tenants[0]))
    with (
        worker(settings, db, REDIS_URL, declared_requests_per_minute_peak=4) as one,
        TestClient(
            create_app(
                settings.model_copy(update={"redis_url": REDIS_URL, "declared_requests_per_minute_peak": 4}),
                db,
            )
        ) as two,
    ):
        for client in (one, two, one, two):
            assert client.get("/v1/customers", headers=headers).status_code == 200
        problem(two.get("/v1/customers", headers=headers), "rate_limited")
        problem(one.get("/v1/customers", headers=headers), "rate_limited")


def test_an_unreachable_redis_falls_back_to_counting_per_worker_never_to_unmetered(
    settings: Settings, db: Database, world: World
) -> None:
    headers = bearer(world.connect("invoice-plus", world.tenants[0]))
    broken = settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0", "declared_requests_per_minute_peak": 2}
    )
    with TestClient(create_app(broken, db)) as client:
        statuses = [client.get("/v1/customers", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def declare(db: Database, slug: str, *, rpm_peak: int) -> None:
    """The vendor's next version declares its volume and review puts it in force (the real path)."""
    with db.session() as session:
        app = marketplace.get_app(session, slug)
        version = versions.new_version(session, app, actor="vendor")
        versions.declare_volume(
            version,
            {
                "people_per_day": {"average": 100, "peak": 1000},
                "requests_per_minute": {"average": 1, "peak": rpm_peak},
            },
        )
        marketplace.put_version_in_force(
            session, app, version, list(app.approved_scopes), actor="reviewer", now=utcnow()
        )


def test_the_quota_follows_the_vendors_declared_peak(settings: Settings, db: Database, world: World) -> None:
    declare(db, "invoice-plus", rpm_peak=2)
    declared = bearer(world.connect("invoice-plus", world.tenants[0]))
    undeclared = bearer(world.connect("loyalty-stamp", world.tenants[0]))
    with worker(settings, db, None) as client:
        assert [client.get("/v1/customers", headers=declared).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        # An app that declared nothing: the settings' stand-in (1,200 per minute) applies.
        assert [client.get("/v1/customers", headers=undeclared).status_code for _ in range(3)] == [200] * 3


def test_in_memory_counts_start_no_sweeper_thread_and_expired_counters_are_swept_inline() -> None:
    """The library's memory storage starts a timer thread 10 ms after each hit; ours sweeps inline."""
    import threading

    from appwarden.monitor.quotas import SweptMemoryStorage

    storage = SweptMemoryStorage()
    storage.timer.join()  # the construction-time timer, cancelled: it ends at once
    before = threading.active_count()
    for _ in range(100):
        storage.incr("live", 60)
    assert storage.get("live") == 100
    assert not storage.timer.is_alive() and threading.active_count() == before
    storage.incr("gone", -1)  # already expired, and never read again
    assert "gone" in storage.storage
    storage._next_sweep = float("-inf")  # the sweep is due
    storage.incr("live", 60)
    assert "gone" not in storage.storage and storage.get("live") == 101
