"""Secondary-damage watch: real SMTP to canary addresses, the provider webhook, alerts in incident
timelines."""

from __future__ import annotations

import json
import smtplib
import socket
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from appwarden.canary.listen import build_controller
from appwarden.canary.models import Canary, CanaryAlert
from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.incident.killswitch import kill_switch
from appwarden.incident.models import Incident, TimelineEntry
from appwarden.incident.revocation import RevocationSignal
from appwarden.oauth.models import Connection
from conftest import World
from test_blast_radius import incident_for
from test_broker import problem
from test_canary import connect_with_canaries

WEBHOOK_KEY = "test-canary-webhook-key-0123"


@pytest.fixture
def canary(world: World, settings: Settings) -> Canary:
    """One of the canaries issued to invoice-plus × company 0."""
    _, made = connect_with_canaries(world, settings, "invoice-plus", world.tenants[0])
    return made[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(db: Database, settings: Settings) -> Iterator[int]:
    """``canary listen`` 's controller on a free port; yields the port."""
    port = _free_port()
    controller = build_controller(db, settings, host="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def mail(
    port: int, to: list[str], *, subject: str = "【重要】ポイント失効のお知らせ"
) -> dict[str, tuple[int, bytes]]:
    message = EmailMessage()
    message["From"] = "campaign@phish.example"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content("会員様のポイントが失効します。こちらからログインしてください: http://phish.example/")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.send_message(message, from_addr="bounce@phish.example", to_addrs=to)


def names(world: World, canary: Canary) -> dict[str, str]:
    with world.db.session() as session:
        conn = session.get(Connection, canary.connection_id)
        assert conn is not None
        return {
            "app": "invoice-plus",
            "company": world.tenants[0].company.public_id,
            "connection": conn.public_id,
        }


def canary_entries(db: Database, incident: str) -> list[TimelineEntry]:
    with db.session() as session:
        inc = session.scalar(select(Incident).where(Incident.public_id == incident))
        assert inc is not None
        return list(
            session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == inc.id, TimelineEntry.kind == "canary")
                .order_by(TimelineEntry.id)
            )
        )


def test_mail_to_a_canary_raises_an_alert_in_the_open_incident(
    world: World, db: Database, canary: Canary, smtp: int
) -> None:
    incident = incident_for(world, "invoice-plus")
    refused = mail(smtp, [canary.email.upper(), "nobody-issued@canary.example.net"])
    assert list(refused) == ["nobody-issued@canary.example.net"]
    assert refused["nobody-issued@canary.example.net"][0] == 550

    with db.session() as session:
        alert = session.scalar(select(CanaryAlert))
        assert alert is not None
        assert (alert.channel, alert.kind, alert.address) == ("smtp", "mail", canary.email)
        assert alert.sender == "bounce@phish.example"
        assert alert.subject == "【重要】ポイント失効のお知らせ"
        assert alert.detail["excerpt"].startswith("会員様のポイントが失効します")
        assert alert.app_id == canary.app_id and alert.connection_id == canary.connection_id
        inc = session.scalar(select(Incident).where(Incident.public_id == incident))
        assert inc is not None and alert.incident_id == inc.id
        event = session.scalar(select(SecurityEvent).where(SecurityEvent.tag == "canary:alert:raised"))
        assert event is not None and event.app_id == canary.app_id and event.data["alert"] == alert.public_id
        alert_id = alert.public_id
    (entry,) = canary_entries(db, incident)
    who = names(world, canary)
    assert entry.data["alert"] == alert_id
    assert {k: entry.data[k] for k in who} == who
    for value in who.values():
        assert value in entry.text
    # The timeline names whose canary it was, never the canary's values.
    dumped = entry.text + json.dumps(entry.data, ensure_ascii=False)
    assert canary.email not in dumped and canary.phone not in dumped and canary.phone[3:] not in dumped


def test_receiver_is_no_relay_and_knows_no_other_address(canary: Canary, smtp: int, db: Database) -> None:
    for to in ("victim@example.com", "postmaster@canary.example.net"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            mail(smtp, [to])
        code, reply = refused.value.recipients[to]
        assert code == 550
        assert (b"5.7.1" if to.endswith("example.com") else b"5.1.1") in reply
    with db.session() as session:
        assert session.scalar(select(CanaryAlert)) is None


def test_alert_without_incident_joins_the_next_incident_for_that_app(
    world: World, db: Database, settings: Settings, canary: Canary, smtp: int
) -> None:
    mail(smtp, [canary.email])
    with db.session() as session:
        alert = session.scalar(select(CanaryAlert))
        assert alert is not None and alert.incident_id is None
    other = incident_for(world, "booking-go")  # another app's incident does not take it
    assert canary_entries(db, other) == []
    result = kill_switch(
        db, apps=["invoice-plus"], reason="dump on a forum", actor="test", signal=RevocationSignal(settings)
    )
    (entry,) = canary_entries(db, result.incident)
    assert entry.data["app"] == "invoice-plus" and entry.data["contact"] == "mail"
    with db.session() as session:
        alert = session.scalar(select(CanaryAlert))
        inc = session.scalar(select(Incident).where(Incident.public_id == result.incident))
        assert alert is not None and inc is not None and alert.incident_id == inc.id


@pytest.fixture
def hook(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr(settings, "canary_webhook_key", SecretStr(WEBHOOK_KEY))
    return {"Authorization": f"Bearer {WEBHOOK_KEY}"}


def test_webhook_records_a_call_to_a_canary_number(
    client: TestClient, world: World, canary: Canary, hook: dict[str, str]
) -> None:
    incident = incident_for(world, "invoice-plus")
    national = "0" + canary.phone[3:]
    spelt = f"{national[:3]}−{national[3:7]}−{national[7:]}"  # the minus sign, as providers sometimes send
    body = {"address": spelt, "kind": "sms", "sender": "+819012345678", "excerpt": "未払い料金があります"}
    response = client.post("/canary/hits", json=body, headers=hook)
    assert response.status_code == 201, response.text
    alert = response.json()
    assert alert["app"] == "invoice-plus" and alert["incident"] == incident
    assert alert["channel"] == "webhook" and alert["kind"] == "sms" and alert["address"] == canary.phone
    assert alert["detail"]["excerpt"] == "未払い料金があります"
    assert [e.data["contact"] for e in canary_entries(world.db, incident)] == ["sms"]


def test_webhook_refuses_bad_keys_unknown_addresses_and_malformed_bodies(
    client: TestClient, canary: Canary, hook: dict[str, str], db: Database
) -> None:
    good = {"address": canary.email, "kind": "mail"}
    problem(client.post("/canary/hits", json=good), 401, "invalid_webhook_key")
    problem(
        client.post("/canary/hits", json=good, headers={"Authorization": "Bearer nope"}),
        401,
        "invalid_webhook_key",
    )
    unknown = {"address": "+81 50-1099-9999", "kind": "call"}
    problem(client.post("/canary/hits", json=unknown, headers=hook), 404, "canary_not_found")
    for bad in (
        {"address": canary.email},  # no kind
        {"address": canary.email, "kind": "fax"},
        {"address": canary.email, "kind": "mail", "received_at": "yesterday"},
        {"address": canary.email, "kind": "mail", "extra": 1},
    ):
        problem(client.post("/canary/hits", json=bad, headers=hook), 422, "invalid_parameter")
    not_json = client.post(
        "/canary/hits", content=b"{not json", headers={**hook, "Content-Type": "application/json"}
    )
    problem(not_json, 422, "invalid_parameter")
    with db.session() as session:
        assert session.scalar(select(CanaryAlert)) is None


def test_webhook_key_is_generated_and_kept_when_unset(settings: Settings) -> None:
    key = settings.canary_webhook_secret
    assert len(key) >= 32 and key == settings.canary_webhook_secret
    assert (settings.data_dir / "canary-webhook.key").read_text() == key
    assert key != settings.admin_key


def test_alerts_over_cli_and_admin_api(
    client: TestClient,
    canary: Canary,
    hook: dict[str, str],
    admin_headers: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    when = "2026-01-09T03:04:05+00:00"
    body = {"address": canary.email, "kind": "mail", "sender": "x@phish.example", "received_at": when}
    assert client.post("/canary/hits", json=body, headers=hook).status_code == 201
    capsys.readouterr()  # the server side's log line (structlog writes to stdout by default)
    problem(client.get("/admin/canary/alerts"), 401, "invalid_admin_key")
    listed = client.get("/admin/canary/alerts", params={"app": "invoice-plus"}, headers=admin_headers).json()
    assert [(a["received_at"], a["incident"]) for a in listed["data"]] == [(when, None)]
    assert run(["canary", "alerts", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["sender"] == "x@phish.example" and rows[0]["app"] == "invoice-plus"
    assert run(["canary", "list", "--json"]) == 0
    assert [r["alerts"] for r in json.loads(capsys.readouterr().out) if r["email"] == canary.email] == [1]
