"""Attestations of erasure requests, end to end: an app receives its canaries through the real broker,
its company disconnects, ``company.redact`` (naming the canaries among the people) reaches a real local
HTTP receiver 48 hours later, the vendor attests through ``/vendor``; then a mail to one of those
canaries through the real SMTP canary watch, or the canaries in an attributed dump, raise
``erasure_contradicted`` with the evidence. An attestation left overdue raises ``attestation_overdue``,
raises the risk, and after the grace period restricts the app (injected clock)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.attribution.service import attribute_dump
from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.marketplace import standing
from appwarden.marketplace.models import App
from appwarden.monitor.models import Alert
from appwarden.monitor.risk import risk_scores
from appwarden.monitor.runtime import Monitor
from appwarden.oauth.connections import disconnect
from appwarden.oauth.models import Connection
from appwarden.obligations.erasure import request_erasure, schedule_company_redacts, set_endpoint
from appwarden.obligations.erasure_delivery import deliver_due
from appwarden.obligations.vocabulary import ErasureTopic
from appwarden.platform.models import Customer
from attribution_helpers import write_csv
from conftest import World
from http_receiver import Receiver, serving
from screening_helpers import VendorClient, new_vendor
from test_broker import walk
from test_canary import connect_with_canaries
from test_canary_watch import hook, mail, smtp  # noqa: F401  (the real SMTP watch, the provider webhook)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as r:
        yield r


@pytest.fixture
def vendor(client: TestClient, db: Database, world: World) -> VendorClient:
    """The vendor of invoice-plus (and booking-go belongs to another vendor)."""
    mine = new_vendor(client, db)
    other = new_vendor(client, db, "Booking Vendor KK")
    with db.session() as session:
        for slug, who in (("invoice-plus", mine), ("booking-go", other)):
            app = session.get(App, world.apps[slug][0])
            assert app is not None
            app.vendor_id = standing_vendor_id(session, who.vendor_id)
    return mine


def standing_vendor_id(session: Any, public_id: str) -> int:
    from appwarden.marketplace.models import Vendor

    found = session.scalar(select(Vendor.id).where(Vendor.public_id == public_id))
    assert found is not None
    return int(found)


def alerts(db: Database, detector: str) -> list[Alert]:
    with db.session() as session:
        found = list(session.scalars(select(Alert).where(Alert.detector == detector).order_by(Alert.id)))
        session.expunge_all()
    return found


def owed_and_delivered(db: Database, settings: Settings, at: datetime) -> str:
    """Owe company.redact at ``at`` and deliver it to the registered endpoint; its public id."""
    with db.session() as session:
        (public_id,) = schedule_company_redacts(session, settings, at)
    with httpx.Client() as http:
        assert deliver_due(db, settings, at, http).delivered == 1
    return public_id


def revoke(db: Database, world: World, at: datetime) -> None:
    """invoice-plus × company 0 disconnected by its owner at ``at``."""
    with db.session() as session:
        conn = session.scalars(
            select(Connection).where(
                Connection.app_id == world.apps["invoice-plus"][0],
                Connection.company_id == world.tenants[0].company.id,
            )
        ).one()
        public_id = conn.public_id
    with db.session() as session:
        disconnect(session, world.tenants[0].company.id, public_id, actor="owner0", now=at)


def attestation(erased_at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "erased_at": erased_at.isoformat(),
        "attested_by": {"name": "Hanako Suzuki", "role": "Data Protection Officer"},
        "statement": "All rows of the company deleted from the primary database and backups.",
        **extra,
    }


def test_a_canary_mailed_after_the_vendor_attested_erasure_contradicts_it(
    settings: Settings,
    db: Database,
    world: World,
    client: TestClient,
    vendor: VendorClient,
    receiver: Receiver,
    smtp: int,  # noqa: F811
) -> None:
    token, canaries = connect_with_canaries(world, settings, "invoice-plus", world.tenants[0])
    # The app lists the company's members through the real broker: the canaries are delivered too.
    listed = walk(client, {"Authorization": f"Bearer {token['access_token']}"}, limit=50)
    assert len(listed) == len(world.tenants[0].customers) + len(canaries)
    with db.session() as session:
        set_endpoint(session, settings, "invoice-plus", receiver.url, actor="vendor", now=NOW)
        public = dict(
            session.execute(
                select(Customer.id, Customer.public_id).where(
                    Customer.id.in_([c.customer_id for c in canaries])
                )
            ).all()
        )
    # Disconnected three days ago (the /vendor API and the SMTP watch run on the wall clock).
    revoked_at = datetime.now(UTC) - timedelta(days=3)
    revoke(db, world, revoked_at)
    request_id = owed_and_delivered(db, settings, revoked_at + timedelta(hours=48))
    ((_, body),) = receiver.requests
    sent = json.loads(body)
    assert sent["topic"] == "company.redact"
    assert set(public.values()) <= set(sent["data"]["customers"])  # the canaries are to be erased too

    # A mail before the attestation is an ordinary canary contact only.
    first = canaries[0]
    assert mail(smtp, [first.email]) == {}
    assert len(alerts(db, "canary_contact")) == 1 and alerts(db, "erasure_contradicted") == []

    listing = vendor.get("/vendor/erasure-requests")
    assert listing.status_code == 200
    (row,) = listing.json()
    assert row["id"] == request_id and row["attestation_state"] == "due" and row["attestation"] is None
    assert row["deadline"] == (revoked_at + timedelta(hours=48, days=30)).isoformat()

    erased_at = datetime.now(UTC) - timedelta(hours=2)
    made = vendor.post(f"/vendor/erasure-requests/{request_id}/attestation", json=attestation(erased_at))
    assert made.status_code == 201, made.text
    document = made.json()
    assert document["attestation_state"] == "attested"
    assert document["attestation"]["attested_by"] == {
        "name": "Hanako Suzuki",
        "role": "Data Protection Officer",
    }
    assert set(public.values()) <= set(document["attestation"]["scope"]["customers"])
    # Immutable: a second attestation is a conflict, and the first stands unchanged.
    again = vendor.post(
        f"/vendor/erasure-requests/{request_id}/attestation", json=attestation(erased_at, statement="edited")
    )
    assert again.status_code == 409 and again.json()["code"] == "already_attested"
    assert vendor.get("/vendor/erasure-requests").json()[0]["attestation"] == document["attestation"]

    # Now a mail to the second canary: the vendor said it was erased.
    second = canaries[1]
    assert mail(smtp, [second.email]) == {}
    (contradicted,) = alerts(db, "erasure_contradicted")
    assert contradicted.severity == "high"
    assert contradicted.observed["canary"] == public[second.customer_id]
    assert contradicted.observed["kind"] == "mail" and contradicted.observed["channel"] == "smtp"
    assert contradicted.baseline["attestation"] == document["attestation"]["id"]
    assert contradicted.baseline["request"] == request_id
    assert contradicted.baseline["attested_at"] == document["attestation"]["attested_at"]
    assert datetime.fromisoformat(contradicted.observed["contacted_at"]) > datetime.fromisoformat(
        document["attestation"]["attested_at"]
    )
    with db.session() as session:
        tags = [t for t in session.scalars(select(SecurityEvent.tag)) if t.startswith("vendor:erasure:")]
        app = standing.find(session, "invoice-plus")
        (score,) = risk_scores(session, [app], datetime.now(UTC)).values()
    assert tags.count("vendor:erasure:attested") == 1
    assert score.parts["alerts"]["open"]["high"] == 1  # on the app's risk
    # The security team's CLI shows the attestation.
    assert run(["erasure", "attestations", "--app", "invoice-plus", "--json"]) == 0


def test_canaries_in_a_dump_attributed_after_the_attestation_contradict_it_and_so_does_a_call(
    settings: Settings,
    db: Database,
    world: World,
    client: TestClient,
    vendor: VendorClient,
    tmp_path: Path,
    hook: dict[str, str],  # noqa: F811
) -> None:
    token, canaries = connect_with_canaries(world, settings, "invoice-plus", world.tenants[0])
    walk(client, {"Authorization": f"Bearer {token['access_token']}"}, limit=50)
    revoked_at = datetime.now(UTC) - timedelta(days=3)
    revoke(db, world, revoked_at)
    with serving() as r:
        with db.session() as session:
            set_endpoint(session, settings, "invoice-plus", r.url, actor="vendor", now=NOW)
        request_id = owed_and_delivered(db, settings, revoked_at + timedelta(hours=48))
    made = vendor.post(
        f"/vendor/erasure-requests/{request_id}/attestation",
        json=attestation(datetime.now(UTC) - timedelta(hours=1)),
    )
    assert made.status_code == 201, made.text
    with db.session() as session:
        people = list(
            session.scalars(
                select(Customer).where(
                    Customer.company_id == world.tenants[0].company.id, Customer.phone.is_not(None)
                )
            )
        )
        canary_public = {c.public_id for c in people if c.id in {k.customer_id for k in canaries}}
        rows = [[c.name, c.phone] for c in people]
    path = write_csv(tmp_path / "leak.csv", ["氏名", "電話番号"], rows)
    found_at = datetime.now(UTC) + timedelta(minutes=5)
    attribute_dump(db, path, settings=settings, now=found_at)
    (contradicted,) = alerts(db, "erasure_contradicted")
    assert contradicted.severity == "high" and contradicted.app_id == world.apps["invoice-plus"][0]
    assert set(contradicted.observed["canaries"]) == canary_public
    assert contradicted.observed["dump"] == "leak.csv"
    assert contradicted.baseline["attestation"] == made.json()["attestation"]["id"]
    # The same dump attributed before any attestation would have raised nothing: a dump found
    # earlier than the attestation does not contradict it.
    attribute_dump(db, path, settings=settings, now=datetime.now(UTC) - timedelta(days=1))
    assert len(alerts(db, "erasure_contradicted")) == 1
    # A call reported by the phone provider's webhook to a canary's number contradicts it too.
    called = client.post("/canary/hits", json={"address": canaries[2].phone, "kind": "call"}, headers=hook)
    assert called.status_code == 201, called.text
    by_call = [a for a in alerts(db, "erasure_contradicted") if a.observed.get("kind") == "call"]
    assert len(by_call) == 1 and by_call[0].observed["channel"] == "webhook"
    assert by_call[0].observed["canary"] in canary_public


def test_another_vendors_request_is_a_404_and_bad_attestations_are_refused(
    settings: Settings, db: Database, world: World, client: TestClient, vendor: VendorClient
) -> None:
    with db.session() as session:
        theirs, _ = request_erasure(
            session,
            app_id=world.apps["booking-go"][0],
            company_id=world.tenants[0].company.id,
            topic=ErasureTopic.CUSTOMER_REDACT,
            payload={"customer": world.tenants[0].customers[0].public_id},
            idempotency_key="theirs",
            now=NOW,
        )
        mine, _ = request_erasure(
            session,
            app_id=world.apps["invoice-plus"][0],
            company_id=world.tenants[0].company.id,
            topic=ErasureTopic.CUSTOMER_REDACT,
            payload={"customer": world.tenants[0].customers[1].public_id},
            idempotency_key="mine",
            now=NOW,
        )
    at = datetime.now(UTC) - timedelta(hours=1)
    for ref in (theirs, "era_missing"):
        response = vendor.post(f"/vendor/erasure-requests/{ref}/attestation", json=attestation(at))
        assert response.status_code == 404 and response.json()["code"] == "erasure_request_not_found"
    assert [r["id"] for r in vendor.get("/vendor/erasure-requests").json()] == [mine]
    # Not delivered yet: nothing to attest.
    response = vendor.post(f"/vendor/erasure-requests/{mine}/attestation", json=attestation(at))
    assert response.status_code == 409 and response.json()["code"] == "erasure_not_delivered"
    with serving() as r:
        with db.session() as session:
            set_endpoint(session, settings, "invoice-plus", r.url, actor="vendor", now=NOW)
        with httpx.Client() as http:
            assert deliver_due(db, settings, NOW, http).delivered == 1
    future = vendor.post(
        f"/vendor/erasure-requests/{mine}/attestation",
        json=attestation(datetime.now(UTC) + timedelta(days=1)),
    )
    assert future.status_code == 422
    blank = vendor.post(
        f"/vendor/erasure-requests/{mine}/attestation",
        json={**attestation(at), "attested_by": {"name": "  ", "role": "DPO"}},
    )
    assert blank.status_code == 422
    nul = vendor.post(
        f"/vendor/erasure-requests/{mine}/attestation", json=attestation(at, statement="a\x00b")
    )
    assert nul.status_code == 422
    unauthenticated = client.get("/vendor/erasure-requests")
    assert unauthenticated.status_code == 401
    assert vendor.get("/vendor/erasure-requests").json()[0]["attestation_state"] == "due"


def test_an_overdue_attestation_alerts_raises_the_risk_and_restricts_the_app_after_grace(
    settings: Settings, db: Database, world: World, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    with db.session() as session:
        set_endpoint(session, settings, "invoice-plus", receiver.url, actor="vendor", now=NOW)
    world.connect("invoice-plus", world.tenants[0])
    revoke(db, world, NOW - timedelta(hours=48))
    request_id = owed_and_delivered(db, settings, NOW)
    monitor = Monitor(settings, db)
    deadline = NOW + timedelta(days=settings.attestation_deadline_days)

    def risk(at: datetime) -> dict[str, Any]:
        with db.session() as session:
            (score,) = risk_scores(session, [standing.find(session, "invoice-plus")], at).values()
        return score.parts["obligations"]

    report = monitor.run_once(deadline - timedelta(minutes=1))
    assert alerts(db, "attestation_overdue") == [] and report.restricted == []
    assert risk(deadline - timedelta(minutes=1))["attestations_overdue"] == 0

    report = monitor.run_once(deadline + timedelta(hours=1))
    (overdue,) = alerts(db, "attestation_overdue")
    assert overdue.public_id in report.raised and overdue.severity == "medium"
    assert overdue.observed["request"] == request_id and overdue.baseline["deadline"] == deadline.isoformat()
    assert report.restricted == []
    assert risk(deadline + timedelta(hours=1))["attestations_overdue"] == 1
    monitor.run_once(deadline + timedelta(days=1))
    assert len(alerts(db, "attestation_overdue")) == 1  # once per request

    grace = deadline + timedelta(days=settings.attestation_grace_days)
    assert monitor.run_once(grace - timedelta(hours=1)).restricted == []
    assert monitor.run_once(grace).restricted == ["invoice-plus"]
    with db.session() as session:
        assert standing.find(session, "invoice-plus").listing_state == "restricted"
        event = session.scalar(select(SecurityEvent).where(SecurityEvent.tag == "app:listing:restricted"))
        assert event is not None and request_id in event.data["reason"]
    capsys.readouterr()
    assert run(["erasure", "attestations", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["id"] == request_id and listed["attestation"] is None
