"""The review's check of a vendor's erasure endpoint over real local HTTP servers: a receiver that
verifies signatures passes; one that accepts an unsigned or a wrongly signed call, or never answers,
fails; the outcome is recorded, and a new endpoint voids it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.demo.vendor_receiver import Received, start
from appwarden.errors import Conflict
from appwarden.events.models import SecurityEvent
from appwarden.obligations.endpoint_check import CheckOutcome, check_endpoint, endpoint_check_of
from appwarden.obligations.erasure import set_endpoint
from conftest import World
from http_receiver import Receiver, serving
from screening_helpers import checklist, new_vendor, prepare, staff

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def register(db: Database, settings: Settings, url: str) -> str:
    with db.session() as session:
        return set_endpoint(session, settings, "invoice-plus", url, actor="t", now=NOW)[1]


def check(db: Database, settings: Settings) -> CheckOutcome:
    with db.session() as session, httpx.Client() as client:
        return check_endpoint(session, settings, "invoice-plus", client, actor="t", now=NOW)


def gate(db: Database, world: World) -> tuple[bool, str]:
    with db.session() as session:
        return endpoint_check_of(session, world.apps["invoice-plus"][0])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as r:
        yield r


def test_a_receiver_that_verifies_signatures_passes_and_a_new_endpoint_voids_it(
    settings: Settings, db: Database, world: World
) -> None:
    secrets: dict[str, str] = {}
    received: list[Received] = []
    url, stop = start(secrets, clock=NOW.timestamp, received=received)
    try:
        assert gate(db, world) == (False, "the vendor has registered no erasure endpoint")
        secrets["invoice-plus"] = register(db, settings, f"{url}/invoice-plus")
        assert gate(db, world)[0] is False  # not checked yet
        outcome = check(db, settings)
        assert outcome.passed and outcome.reason == "signed 2xx, unsigned 401, wrongly signed 401"
        assert [r.status for r in received] == [204, 401, 401]
        assert all(r.headers["x-appwarden-topic"] == "endpoint.test" for r in received)
        assert gate(db, world) == (True, "the erasure endpoint passed its check")
        register(db, settings, f"{url}/invoice-plus")  # a new secret the receiver does not know yet
        assert gate(db, world)[0] is False
        assert check(db, settings).reason == "the signed call answered 401, not 2xx"
    finally:
        stop()
    with db.session() as session:
        found = [
            t
            for t in session.scalars(select(SecurityEvent.tag).order_by(SecurityEvent.id))
            if t.startswith("vendor:erasure-endpoint:")
        ]
    assert found[-3:] == [
        "vendor:erasure-endpoint:checked",
        "vendor:erasure-endpoint:set",
        "vendor:erasure-endpoint:check-failed",
    ]


@pytest.mark.parametrize(
    ("statuses", "reason"),
    [
        ([204, 204, 401], "the unsigned call answered 204, not 401"),
        ([204, 401, 200], "the wrongly signed call answered 200, not 401"),
        ([500, 401, 401], "the signed call answered 500, not 2xx"),
    ],
)
def test_an_endpoint_that_accepts_what_it_must_refuse_fails(
    settings: Settings, db: Database, world: World, receiver: Receiver, statuses: list[int], reason: str
) -> None:
    register(db, settings, receiver.url)
    receiver.statuses = list(statuses)
    outcome = check(db, settings)
    assert not outcome.passed and outcome.reason == reason
    assert gate(db, world) == (False, f"the erasure endpoint failed its check: {reason}")
    assert len(receiver.requests) == 3 and "x-appwarden-signature" not in receiver.requests[1][0]


def test_an_endpoint_that_never_answers_fails_on_the_timeout(
    settings: Settings, db: Database, world: World
) -> None:
    quick = settings.model_copy(update={"erasure_webhook_timeout_seconds": 0.2})
    with socket.socket() as silent:  # listens, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        register(db, settings, f"http://127.0.0.1:{silent.getsockname()[1]}/erasure")
        outcome = check(db, quick)
    assert not outcome.passed and "the signed call answered no answer (ReadTimeout)" in outcome.reason


def test_no_endpoint_is_a_conflict_and_the_cli_exits_1_on_a_failed_check(
    settings: Settings, db: Database, world: World, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Conflict):
        check(db, settings)
    assert run(["erasure", "check", "invoice-plus"]) == 1
    assert "has no erasure endpoint" in capsys.readouterr().err
    register(db, settings, receiver.url)
    assert run(["erasure", "check", "invoice-plus"]) == 1  # the plain receiver accepts everything
    assert "FAILED: the unsigned call answered 204, not 401" in " ".join(capsys.readouterr().out.split())


def test_the_admin_api_runs_the_check(
    settings: Settings, db: Database, world: World, client: TestClient, admin_headers: dict[str, str]
) -> None:
    path = "/admin/apps/invoice-plus/erasure-endpoint/check"
    assert client.post(path).status_code == 401
    answer = client.post(path, headers=admin_headers)
    assert answer.status_code == 409 and answer.json()["code"] == "no_erasure_endpoint"
    missing = client.post("/admin/apps/no-such-app/erasure-endpoint/check", headers=admin_headers)
    assert missing.status_code == 404 and missing.json()["code"] == "app_not_found"
    secrets: dict[str, str] = {}
    url, stop = start(secrets)  # the wall clock: the API checks at the real now
    try:
        secrets["invoice-plus"] = register(db, settings, f"{url}/invoice-plus")
        answer = client.post(path, headers=admin_headers)
    finally:
        stop()
    assert answer.status_code == 200 and answer.json()["passed"] is True
    assert gate(db, world) == (True, "the erasure endpoint passed its check")


def test_the_last_approval_waits_for_the_vendors_own_endpoint_to_pass_the_check(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    """Over HTTP: the vendor registers its endpoint through /vendor (secret shown once; another vendor's
    app is a 404 and a bad URL a 422); until the check passed, the approval that would list the app is
    409 ``listing_blocked`` and writes nothing; after it, the same approval lists the app."""
    vendor = new_vendor(client, db)
    prepare(vendor, "stamp-card", ["customers.points:raw", "customers.rank:raw"])
    reviewer = {"Authorization": f"Bearer {staff(db, 'alice')}"}
    sheet = client.get("/admin/reviews/stamp-card", headers=admin_headers).json()
    blocked = client.post("/admin/reviews/stamp-card/approve", headers=reviewer, json=checklist(sheet))
    assert (blocked.status_code, blocked.json()["code"]) == (409, "listing_blocked")
    assert blocked.json()["reasons"] == ["the vendor has registered no erasure endpoint"]
    assert client.get("/admin/reviews/stamp-card", headers=admin_headers).json()["decisions"] == []

    other = new_vendor(client, db, "Other Vendor KK")
    elsewhere = other.put("/vendor/apps/stamp-card/erasure-endpoint", json={"url": "https://other.example/e"})
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "app_not_found")
    bad = vendor.put("/vendor/apps/stamp-card/erasure-endpoint", json={"url": "ftp://vendor.example/e"})
    assert bad.status_code == 422
    secrets: dict[str, str] = {}
    url, stop = start(secrets)
    try:
        put = vendor.put("/vendor/apps/stamp-card/erasure-endpoint", json={"url": f"{url}/stamp-card"})
        assert put.status_code == 200 and put.json()["secret"].startswith("whsec_")
        secrets["stamp-card"] = put.json()["secret"]
        still = client.post("/admin/reviews/stamp-card/approve", headers=reviewer, json=checklist(sheet))
        assert still.status_code == 409 and "not been checked" in still.json()["reasons"][0]
        checked = client.post("/admin/apps/stamp-card/erasure-endpoint/check", headers=admin_headers)
        assert checked.status_code == 200 and checked.json()["passed"] is True
    finally:
        stop()
    listed = client.post("/admin/reviews/stamp-card/approve", headers=reviewer, json=checklist(sheet))
    assert listed.status_code == 200, listed.text
    assert listed.json()["app"]["listing_state"] == "listed"
