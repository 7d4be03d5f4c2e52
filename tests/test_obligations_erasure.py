"""Erasure requests to vendors over a real local HTTP receiver: signed with the app's own secret (a
tampered body or a replayed timestamp fails), retried with backoff, dead-lettered after the last attempt,
never duplicated, and ``company.redact`` owed only 48 hours after the company disconnected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.oauth.connections import disconnect
from appwarden.oauth.models import Connection
from appwarden.obligations.erasure import (
    list_requests,
    request_erasure,
    schedule_company_redacts,
    set_endpoint,
)
from appwarden.obligations.erasure_delivery import TOPIC_HEADER, deliver_due
from appwarden.obligations.models import ErasureRequest, VendorEndpoint
from appwarden.obligations.vocabulary import ErasureStatus, ErasureTopic
from appwarden.signatures import SIGNATURE_HEADER, verify
from conftest import World
from http_receiver import Receiver, serving
from ledger_helpers import deliver

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SIG = SIGNATURE_HEADER.lower()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as r:
        yield r


def endpoint(db: Database, settings: Settings, url: str, slug: str = "invoice-plus") -> str:
    with db.session() as session:
        return set_endpoint(session, settings, slug, url, actor="test", now=NOW)[1]


def enqueue(db: Database, world: World, key: str = "key-1", slug: str = "invoice-plus") -> str:
    with db.session() as session:
        public_id, _ = request_erasure(
            session,
            app_id=world.apps[slug][0],
            company_id=world.tenants[0].company.id,
            topic=ErasureTopic.CUSTOMER_REDACT,
            payload={"customer": world.tenants[0].customers[0].public_id},
            idempotency_key=key,
            now=NOW,
        )
    return public_id


def rows(db: Database) -> list[ErasureRequest]:
    with db.session() as session:
        found = list(session.scalars(select(ErasureRequest).order_by(ErasureRequest.id)))
        session.expunge_all()
    return found


def tags(db: Database, prefix: str = "vendor:erasure:") -> list[str]:
    with db.session() as session:
        found = session.scalars(select(SecurityEvent.tag).order_by(SecurityEvent.id))
        return [t for t in found if t.startswith(prefix)]


def run_worker(db: Database, settings: Settings, at: datetime) -> tuple[int, int, int]:
    with httpx.Client() as client:
        result = deliver_due(db, settings, at, client)
    return result.delivered, result.failed, result.dead


def test_a_request_is_signed_with_the_apps_own_secret_and_a_tampered_or_replayed_one_fails(
    settings: Settings, db: Database, world: World, receiver: Receiver
) -> None:
    secret = endpoint(db, settings, receiver.url)
    other = endpoint(db, settings, receiver.url + "/other", slug="booking-go")
    with db.session() as session:
        stored = [e.sealed_secret for e in session.scalars(select(VendorEndpoint))]
    assert len(stored) == 2 and all(secret not in s and other not in s for s in stored)  # sealed
    public_id = enqueue(db, world)
    assert run_worker(db, settings, NOW) == (1, 0, 0)
    ((headers, body),) = receiver.requests
    at = NOW.timestamp()
    assert verify(secret, headers[SIG], body, now=at)
    assert not verify(other, headers[SIG], body, now=at)  # another app's secret
    assert not verify(secret, headers[SIG], body.replace(b"customer.redact", b"company.redact"), now=at)
    assert verify(secret, headers[SIG], body, now=at + 299)
    assert not verify(secret, headers[SIG], body, now=at + 301)  # replayed after the 5-minute window
    document = json.loads(body)
    assert document["id"] == public_id and document["topic"] == "customer.redact"
    assert document["app"] == "invoice-plus" and document["company"] == world.tenants[0].company.public_id
    assert document["data"] == {"customer": world.tenants[0].customers[0].public_id}
    assert headers[TOPIC_HEADER.lower()] == "customer.redact" and headers["idempotency-key"] == "key-1"
    (row,) = rows(db)
    assert row.status == ErasureStatus.DELIVERED and row.delivered_at == NOW and row.attempts == 1
    assert tags(db) == ["vendor:erasure:requested", "vendor:erasure:delivered"]


def test_a_failed_delivery_backs_off_exponentially_then_succeeds_with_the_same_key(
    settings: Settings, db: Database, world: World, receiver: Receiver
) -> None:
    base = settings.erasure_backoff_base_seconds
    endpoint(db, settings, receiver.url)
    enqueue(db, world)
    receiver.statuses = [500, 503]
    assert run_worker(db, settings, NOW) == (0, 1, 0)
    (row,) = rows(db)
    assert (
        row.status == ErasureStatus.PENDING
        and row.attempts == 1
        and row.last_error == "endpoint answered HTTP 500"
    )
    assert row.next_attempt_at == NOW + timedelta(seconds=base)
    assert run_worker(db, settings, NOW + timedelta(seconds=base - 1)) == (0, 0, 0)  # not yet due
    assert len(receiver.requests) == 1
    second = NOW + timedelta(seconds=base)
    assert run_worker(db, settings, second) == (0, 1, 0)
    (row,) = rows(db)
    assert row.attempts == 2 and row.next_attempt_at == second + timedelta(seconds=2 * base)  # doubled
    assert run_worker(db, settings, second + timedelta(seconds=2 * base)) == (1, 0, 0)
    assert [h["idempotency-key"] for h, _ in receiver.requests] == ["key-1"] * 3
    assert len({body for _, body in receiver.requests}) == 1  # the same document every time
    (row,) = rows(db)
    assert row.status == ErasureStatus.DELIVERED and row.attempts == 3 and row.last_error is None
    assert receiver.url not in " ".join(tags(db))


def test_the_backoff_is_capped(settings: Settings, db: Database, world: World, receiver: Receiver) -> None:
    capped = settings.model_copy(
        update={"erasure_backoff_base_seconds": 100.0, "erasure_backoff_max_seconds": 250.0}
    )
    endpoint(db, settings, receiver.url)
    enqueue(db, world)
    receiver.statuses = [500] * 3
    at = NOW
    for expected in (100, 200, 250):
        assert run_worker(db, capped, at) == (0, 1, 0)
        (row,) = rows(db)
        assert row.next_attempt_at == at + timedelta(seconds=expected)
        at = row.next_attempt_at


def test_after_the_last_attempt_a_request_is_dead_lettered_with_a_security_event(
    settings: Settings, db: Database, world: World, receiver: Receiver
) -> None:
    three = settings.model_copy(update={"erasure_max_attempts": 3})
    endpoint(db, settings, receiver.url)
    public_id = enqueue(db, world)
    receiver.statuses = [500] * 10
    at = NOW
    assert run_worker(db, three, at) == (0, 1, 0)
    at = rows(db)[0].next_attempt_at
    assert run_worker(db, three, at) == (0, 1, 0)
    at = rows(db)[0].next_attempt_at
    assert run_worker(db, three, at) == (0, 0, 1)
    (row,) = rows(db)
    assert row.status == ErasureStatus.DEAD and row.attempts == 3
    assert run_worker(db, three, at + timedelta(days=30)) == (0, 0, 0)  # a dead row is not sent again
    assert len(receiver.requests) == 3
    assert tags(db)[-1] == "vendor:erasure:dead-lettered"
    with db.session() as session:
        event = session.scalars(
            select(SecurityEvent).where(SecurityEvent.tag == "vendor:erasure:dead-lettered")
        ).one()
        assert event.data["request"] == public_id and event.data["attempts"] == 3
        assert event.app_id == world.apps["invoice-plus"][0]


def test_an_app_without_an_endpoint_is_retried_not_dropped(
    settings: Settings, db: Database, world: World
) -> None:
    enqueue(db, world)
    assert run_worker(db, settings, NOW) == (0, 1, 0)
    (row,) = rows(db)
    assert (
        row.status == ErasureStatus.PENDING and row.last_error == "no erasure endpoint registered for the app"
    )


def test_enqueuing_twice_makes_one_row_and_a_delivered_request_is_not_sent_again(
    settings: Settings, db: Database, world: World, receiver: Receiver
) -> None:
    endpoint(db, settings, receiver.url)
    first = enqueue(db, world)
    assert enqueue(db, world) == first
    assert len(rows(db)) == 1
    assert run_worker(db, settings, NOW) == (1, 0, 0)
    assert enqueue(db, world) == first  # after delivery too
    assert run_worker(db, settings, NOW + timedelta(hours=1)) == (0, 0, 0)
    assert len(receiver.requests) == 1 and len(rows(db)) == 1
    assert enqueue(db, world, key="key-2") != first  # another key is another request
    assert tags(db, "vendor:erasure:requested") == ["vendor:erasure:requested"] * 2


def revoke(db: Database, world: World, tenant: int, at: datetime, slug: str = "invoice-plus") -> str:
    world.connect(slug, world.tenants[tenant])
    with db.session() as session:
        conn = session.scalars(
            select(Connection).where(
                Connection.app_id == world.apps[slug][0],
                Connection.company_id == world.tenants[tenant].company.id,
            )
        ).one()
        public_id = conn.public_id
    with db.session() as session:
        disconnect(session, world.tenants[tenant].company.id, public_id, actor="owner0", now=at)
    return public_id


def test_company_redact_is_owed_only_48_hours_after_the_disconnection_and_names_the_people_received(
    settings: Settings, db: Database, world: World, receiver: Receiver
) -> None:
    deliver(world, "invoice-plus", 0, NOW - timedelta(days=3), name__raw=[0, 1], phone__raw=[1, 2])
    deliver(world, "invoice-plus", 1, NOW - timedelta(days=3), name__raw=[0])  # another company: stays
    deliver(world, "booking-go", 0, NOW - timedelta(days=3), name__token=[5])  # another app
    revoked_at = NOW - timedelta(days=1)
    connection = revoke(db, world, 0, revoked_at)
    world.connect("invoice-plus", world.tenants[1])  # active: never redacted
    with db.session() as session:
        assert schedule_company_redacts(session, settings, revoked_at + timedelta(hours=47, minutes=59)) == []
    due = revoked_at + timedelta(hours=48)
    with db.session() as session:
        (public_id,) = schedule_company_redacts(session, settings, due)
    with db.session() as session:
        assert schedule_company_redacts(session, settings, due + timedelta(hours=5)) == []  # once
        (view,) = list_requests(session, app_ref="invoice-plus")
    t = world.tenants[0]
    assert view.id == public_id and view.topic == "company.redact" and view.company == t.company.public_id
    assert view.payload == {
        "company": t.company.public_id,
        "connection": connection,
        "revoked_at": revoked_at.isoformat(),
        "customers": sorted(c.public_id for c in t.customers[:3]),
    }
    secret = endpoint(db, settings, receiver.url)
    assert run_worker(db, settings, due) == (1, 0, 0)
    ((headers, body),) = receiver.requests
    assert verify(secret, headers[SIG], body, now=due.timestamp())
    assert headers[TOPIC_HEADER.lower()] == "company.redact"
    assert json.loads(body)["data"]["customers"] == view.payload["customers"]


def test_the_cli_sets_an_endpoint_delivers_and_lists(
    settings: Settings, db: Database, world: World, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["erasure", "set-endpoint", "invoice-plus", "ftp://vendor.example/x"]) == 1
    assert run(["erasure", "set-endpoint", "no-such-app", receiver.url]) == 1
    capsys.readouterr()
    assert run(["erasure", "set-endpoint", "invoice-plus", receiver.url]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    # Revoked three days ago (the CLI runs on the wall clock): company.redact is due now.
    revoke(db, world, 0, datetime.now(UTC) - timedelta(days=3))
    assert run(["erasure", "deliver"]) == 0
    assert "delivered 1" in capsys.readouterr().out
    ((headers, body),) = receiver.requests
    assert verify(secret, headers[SIG], body, now=datetime.now(UTC).timestamp())
    assert run(["erasure", "list", "--app", "invoice-plus", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["status"] == "delivered" and listed["topic"] == "company.redact"
    assert run(["erasure", "deliver"]) == 0
    assert "scheduled 0 company.redact; delivered 0" in capsys.readouterr().out
    assert len(receiver.requests) == 1
