"""Failed logins are throttled per account and per client address: 429 with Retry-After, a security event
each time, and the right password refused while the lock-out lasts; shared through Redis when configured."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import Unavailable
from appwarden.events.models import SecurityEvent
from appwarden.web.login_throttle import LoginThrottle
from conftest import OWNER_PASSWORD, World

REDIS_URL = os.environ.get("APPWARDEN_TEST_REDIS_URL")


def attempt(client: TestClient, username: str, password: str) -> tuple[int, dict[str, str]]:
    page = client.get("/oauth/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    response = client.post(
        "/oauth/login",
        data={"username": username, "password": password, "csrf_token": csrf.group(1), "next": ""},
        follow_redirects=False,
    )
    return response.status_code, dict(response.headers)


def tags(db: Database, tag: str) -> list[SecurityEvent]:
    with db.session() as session:
        return list(session.scalars(select(SecurityEvent).where(SecurityEvent.tag == tag)))


def test_account_is_locked_after_failures_and_the_right_password_is_refused_while_locked(
    client: TestClient, world: World, settings: Settings
) -> None:
    limit = settings.login_max_failures_per_account
    for _ in range(limit):
        assert attempt(client, "owner0", "wrong-password")[0] == 401
    status, headers = attempt(client, "owner0", OWNER_PASSWORD)
    assert status == 429
    assert 0 < int(headers["retry-after"]) <= settings.login_failure_window_seconds
    assert len(tags(world.db, "user:session:login-failed")) == limit
    (throttled,) = tags(world.db, "user:session:login-throttled")
    assert throttled.actor == "owner0"
    assert throttled.data["scope"] == "account"
    assert not tags(world.db, "user:session:login")  # the right password did not log in
    # Another account from the same address still logs in: the account is what is locked.
    assert attempt(client, "owner1", OWNER_PASSWORD)[0] == 200


def test_a_good_login_before_the_limit_forgets_the_accounts_failures(
    client: TestClient, world: World, settings: Settings
) -> None:
    for _ in range(settings.login_max_failures_per_account - 1):
        assert attempt(client, "owner0", "wrong-password")[0] == 401
    assert attempt(client, "owner0", OWNER_PASSWORD)[0] == 200
    for _ in range(settings.login_max_failures_per_account - 1):
        assert attempt(client, "owner0", "wrong-password")[0] == 401
    assert attempt(client, "owner0", OWNER_PASSWORD)[0] == 200


def test_one_address_guessing_many_accounts_is_locked_out(
    settings: Settings, db: Database, world: World
) -> None:
    strict = settings.model_copy(update={"login_max_failures_per_address": 3})
    with TestClient(create_app(strict, db)) as client:
        for n in range(3):
            assert attempt(client, f"nobody-{n}", "guess")[0] == 401
        status, headers = attempt(client, "owner0", OWNER_PASSWORD)
    assert status == 429
    assert "retry-after" in headers
    (throttled,) = tags(db, "user:session:login-throttled")
    assert throttled.data["scope"] == "address"


@pytest.mark.services
@pytest.mark.skipif(
    not REDIS_URL, reason="set APPWARDEN_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15) for the Redis path"
)
def test_failures_are_shared_between_workers_through_redis(settings: Settings) -> None:
    shared = settings.model_copy(update={"redis_url": REDIS_URL, "login_max_failures_per_account": 2})
    account = f"owner-{uuid.uuid4().hex}"  # Redis outlives the test: a name no other run uses
    one, other = LoginThrottle(shared), LoginThrottle(shared)  # two workers' throttles
    one.failed(account, "192.0.2.1")
    other.failed(account, "192.0.2.2")
    lockout = one.lockout(account, "192.0.2.3")
    assert lockout is not None and lockout.scope == "account"
    assert other.lockout(account, "192.0.2.3") is not None


def test_an_unreachable_counter_store_refuses_logins(settings: Settings) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with pytest.raises(Unavailable):
        LoginThrottle(broken).lockout("owner0", "192.0.2.1")
