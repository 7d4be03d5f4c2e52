"""The erasure triggers over a real local HTTP receiver: ``customer.redact`` on a deletion and on the
person's own request, ``customer.data_request``, the ``retention.expired`` batches (never the same person
twice for one cutoff), the admin API and one worker turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from appwarden import platform
from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import NotFound
from appwarden.obligations.erasure import list_requests, set_endpoint
from appwarden.obligations.erasure_triggers import person_requests, schedule_retention_expired
from appwarden.obligations.erasure_worker import turn
from appwarden.obligations.vocabulary import ErasureStatus, ErasureTopic
from appwarden.signatures import SIGNATURE_HEADER, verify
from conftest import World
from http_receiver import Receiver, serving
from ledger_helpers import deliver

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 12:00 in Japan
SIG = SIGNATURE_HEADER.lower()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as r:
        yield r


def views(db: Database, topic: str | None = None):  # type: ignore[no-untyped-def]
    with db.session() as session:
        found = list_requests(session)
    return sorted((v for v in found if topic is None or v.topic == topic), key=lambda v: (v.app, v.id))


def test_deleting_a_customer_owes_customer_redact_to_every_app_that_received_them(
    world: World, db: Database
) -> None:
    deliver(world, "invoice-plus", 0, NOW - timedelta(days=2), name__raw=[0, 1], phone__raw=[0])
    deliver(world, "loyalty-stamp", 0, NOW - timedelta(days=2), phone__token=[0])
    deliver(world, "booking-go", 0, NOW - timedelta(days=2), name__raw=[1])  # not this person
    gone = world.tenants[0].customers[0]
    with db.session() as session:
        platform.service.delete_customer(session, gone.id)
    found = views(db)
    assert [(v.app, v.topic) for v in found] == [
        ("invoice-plus", "customer.redact"),
        ("loyalty-stamp", "customer.redact"),
    ]
    assert found[0].payload == {
        "customer": gone.public_id,
        "fields": ["name", "phone"],
        "received": [{"field": "name", "mode": "raw"}, {"field": "phone", "mode": "raw"}],
    }
    assert found[1].payload["received"] == [{"field": "phone", "mode": "token"}]  # any mode
    assert all(v.company == world.tenants[0].company.public_id for v in found)


def test_a_persons_request_by_phone_is_raised_once_per_app_and_equals_the_deletions(
    world: World, db: Database
) -> None:
    deliver(world, "invoice-plus", 0, NOW - timedelta(days=2), name__raw=[0])
    person = world.tenants[0].customers[0]
    assert person.phone is not None
    spelled = "+81 " + person.phone[1:].replace("-", " ")
    with db.session() as session:
        first = person_requests(session, spelled, ErasureTopic.CUSTOMER_REDACT, now=NOW, actor="t")
    with db.session() as session:
        again = person_requests(session, person.public_id, ErasureTopic.CUSTOMER_REDACT, now=NOW, actor="t")
    assert len(first) == 1 and again == first
    with db.session() as session:
        platform.service.delete_customer(session, person.id)  # the same request: not a second one
    assert [v.id for v in views(db)] == first
    with db.session() as session, pytest.raises(NotFound):  # deleted: nobody left to ask for
        person_requests(session, spelled, ErasureTopic.CUSTOMER_DATA_REQUEST, now=NOW, actor="t")


def test_a_data_request_is_one_per_app_and_day(world: World, db: Database) -> None:
    deliver(world, "invoice-plus", 0, NOW - timedelta(days=2), name__raw=[3])
    deliver(world, "booking-go", 0, NOW - timedelta(days=2), email__masked=[3])
    person = world.tenants[0].customers[3].public_id
    topic = ErasureTopic.CUSTOMER_DATA_REQUEST
    with db.session() as session:
        first = person_requests(session, person, topic, now=NOW, actor="t")
        same_day = person_requests(session, person, topic, now=NOW + timedelta(hours=8), actor="t")
        next_day = person_requests(session, person, topic, now=NOW + timedelta(days=1), actor="t")
    assert len(first) == 2 and same_day == first and set(next_day).isdisjoint(first)
    assert {v.app for v in views(db, "customer.data_request")} == {"invoice-plus", "booking-go"}


def test_retention_expired_names_each_person_once_per_cutoff_in_capped_batches(
    settings: Settings, world: World, db: Database
) -> None:
    small = settings.model_copy(update={"erasure_retention_batch_size": 2})
    company = world.tenants[0].company.public_id
    deliver(world, "invoice-plus", 0, NOW - timedelta(days=40), name__raw=[0, 1, 2], phone__token=[4])
    deliver(world, "invoice-plus", 0, NOW - timedelta(days=10), name__raw=[2])  # again: still kept
    deliver(world, "invoice-plus", 0, NOW - timedelta(days=29, hours=12), name__raw=[5])
    customers = world.tenants[0].customers
    with db.session() as session:
        first = schedule_retention_expired(session, small, NOW)
    found = views(db, "retention.expired")
    assert len(first) == 1 and len(found) == 1  # tokens are no holding; one field, two people
    (batch,) = found
    assert batch.company == company and batch.payload["field"] == "name"
    assert batch.payload["customers"] == sorted(c.public_id for c in customers[:2])
    assert batch.payload["retention_days"] == 30 and batch.payload["previous_cutoff"] is None
    with db.session() as session:
        assert schedule_retention_expired(session, small, NOW + timedelta(hours=8)) == []  # same day
    # Next day: customer 5 (delivered 29.5 days ago) is past too; 0 and 1 are not named again.
    with db.session() as session:
        (second,) = schedule_retention_expired(session, small, NOW + timedelta(days=1))
    (later,) = [v for v in views(db, "retention.expired") if v.id == second]
    assert later.payload["customers"] == [customers[5].public_id]
    assert later.payload["previous_cutoff"] == batch.payload["cutoff"]
    # Three weeks on, customer 2's re-delivery expires, and more people than one batch holds.
    deliver(world, "invoice-plus", 0, NOW - timedelta(days=25), name__raw=[6, 7, 8])
    with db.session() as session:
        third = schedule_retention_expired(session, small, NOW + timedelta(days=21))
    parts = [v for v in views(db, "retention.expired") if v.id in third]
    assert len(parts) == 2 and sorted(v.payload["part"] for v in parts) == [1, 2]
    named = sorted(c for v in parts for c in v.payload["customers"])
    assert named == sorted(customers[i].public_id for i in (2, 6, 7, 8))
    assert all(len(v.payload["customers"]) <= 2 and v.payload["parts"] == 2 for v in parts)


def test_retention_leaves_an_ended_connection_to_company_redact(world: World, db: Database) -> None:
    from test_obligations_erasure import revoke

    deliver(world, "invoice-plus", 0, NOW - timedelta(days=40), name__raw=[0])
    revoke(db, world, 0, NOW - timedelta(days=1))
    with db.session() as session:
        assert schedule_retention_expired(session, world_settings(), NOW) == []


def world_settings() -> Settings:
    from appwarden.config import get_settings

    return get_settings()


def test_the_admin_api_raises_and_lists_requests_with_precise_problems(
    world: World, client: TestClient, admin_headers: dict[str, str]
) -> None:
    deliver(world, "invoice-plus", 0, NOW - timedelta(days=2), name__raw=[0])
    person = world.tenants[0].customers[0].public_id
    body = {"topic": "customer.redact", "customer": person}
    assert client.post("/admin/erasure-requests", json=body).status_code == 401
    created = client.post("/admin/erasure-requests", json=body, headers=admin_headers)
    assert created.status_code == 201
    (row,) = created.json()
    assert row["topic"] == "customer.redact" and row["payload"]["customer"] == person
    again = client.post("/admin/erasure-requests", json=body, headers=admin_headers).json()
    assert [r["id"] for r in again] == [row["id"]]
    listed = client.get("/admin/erasure-requests?app=invoice-plus&status=pending", headers=admin_headers)
    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [row["id"]]
    delivered = client.get("/admin/erasure-requests?status=delivered", headers=admin_headers)
    assert delivered.json() == []
    for query, status, code in [
        ("?app=no-such-app", 404, "app_not_found"),
        ("?status=lost", 422, "invalid_parameter"),
    ]:
        answer = client.get("/admin/erasure-requests" + query, headers=admin_headers)
        assert answer.status_code == status and answer.json()["code"] == code
    for bad, status, code in [
        ({"topic": "company.redact", "customer": person}, 422, "invalid_parameter"),
        ({"topic": "customer.redact", "customer": "nobody@example.invalid"}, 404, "customer_not_found"),
        ({"topic": "customer.redact", "customer": "zzz"}, 422, "invalid_parameter"),
        ({"topic": "customer.redact"}, 422, "invalid_parameter"),
    ]:
        answer = client.post("/admin/erasure-requests", json=bad, headers=admin_headers)
        assert answer.status_code == status and answer.json()["code"] == code, bad


def test_a_worker_turn_schedules_and_delivers_every_trigger_over_http(
    settings: Settings, world: World, db: Database, receiver: Receiver
) -> None:
    from test_obligations_erasure import revoke

    # The deletion's customer.redact is due on the wall clock (the platform's delete has no clock).
    at = datetime.now(UTC)

    with db.session() as session:
        secret = set_endpoint(session, settings, "invoice-plus", receiver.url, actor="t", now=at)[1]
    deliver(world, "invoice-plus", 0, at - timedelta(days=40), name__raw=[0, 1])
    deliver(world, "invoice-plus", 1, at - timedelta(days=3), name__raw=[0])
    revoke(db, world, 1, at - timedelta(days=3))
    with db.session() as session:
        platform.service.delete_customer(session, world.tenants[0].customers[1].id)
    at = datetime.now(UTC)  # after the deletion: its request is due
    with httpx.Client() as http:
        result = turn(db, settings, at, http)
    assert (result.company_redacts, result.retention_expired) == (1, 1)
    assert (result.run.delivered, result.run.failed, result.run.dead) == (3, 0, 0)
    assert "scheduled 1 company.redact, 1 retention.expired; delivered 3" in result.line()
    topics = sorted(json.loads(body)["topic"] for _, body in receiver.requests)
    assert topics == ["company.redact", "customer.redact", "retention.expired"]
    assert all(verify(secret, h[SIG], body, now=at.timestamp()) for h, body in receiver.requests)
    (expired,) = [json.loads(b) for _, b in receiver.requests if b"retention.expired" in b]
    # The deleted customer has their own customer.redact; the batch names the one still on file.
    assert expired["data"]["customers"] == [world.tenants[0].customers[0].public_id]
    with httpx.Client() as http:
        idle = turn(db, settings, at + timedelta(hours=1), http)
    assert (idle.company_redacts, idle.retention_expired, idle.run.delivered) == (0, 0, 0)
    assert all(v.status == ErasureStatus.DELIVERED for v in views(db))


def test_the_cli_raises_a_persons_requests_and_runs_one_worker_turn(
    world: World, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)  # the CLI runs on the wall clock
    deliver(world, "invoice-plus", 0, now - timedelta(days=2), name__raw=[0])
    person = world.tenants[0].customers[0].public_id
    assert run(["erasure", "set-endpoint", "invoice-plus", receiver.url]) == 0
    assert run(["erasure", "customer", person, "--json"]) == 0
    capsys.readouterr()
    assert run(["erasure", "data-request", person, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["topic"] == "customer.data_request" and row["payload"]["fields"] == ["name"]
    assert run(["erasure", "customer", "nobody@example.invalid"]) == 1
    assert capsys.readouterr().err.startswith("error: no customer has this id")
    assert run(["erasure", "worker", "--once"]) == 0
    assert "delivered 2," in capsys.readouterr().out
    assert len(receiver.requests) == 2
    assert run(["erasure", "list", "--status", "delivered", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
