"""Alerts for the security team: ``/admin/alerts`` (list, show, ack) and ``appwarden alerts list|show|ack``,
bad input refused precisely, and canary contact joining the same stream."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.monitor.policy import MonitorPolicy
from appwarden.monitor.runtime import Monitor
from conftest import World
from test_canary import connect_with_canaries

NOW = datetime.now(UTC)


def raise_probing(settings: Settings, db: Database, world: World, slug: str = "invoice-plus") -> str:
    m = Monitor(settings, db, MonitorPolicy(probing_refusals_per_hour=3))
    for _ in range(3):
        m.refused(world.apps[slug][0], world.tenants[0].company.id, 404, NOW)
    (raised,) = m.run_once(NOW).raised
    return raised


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def test_admin_lists_shows_and_acknowledges_an_alert(
    client: TestClient, settings: Settings, db: Database, world: World, admin_headers: dict[str, str]
) -> None:
    alert_id = raise_probing(settings, db, world)
    (row,) = client.get("/admin/alerts", headers=admin_headers).json()["data"]
    assert row["alert"]["id"] == alert_id and row["acknowledged"] is None
    assert row["alert"]["detector"] == "probing" and row["alert"]["action"] == "alert"
    shown = client.get(f"/admin/alerts/{alert_id}", headers=admin_headers).json()
    assert shown == row
    acked = client.post(
        f"/admin/alerts/{alert_id}/ack", json={"note": "vendor fixed a bad id cache"}, headers=admin_headers
    )
    assert acked.status_code == 200
    assert acked.json()["acknowledged"]["by"] == "admin-api"
    assert acked.json()["acknowledged"]["note"] == "vendor fixed a bad id cache"
    assert client.get("/admin/alerts", headers=admin_headers).json()["data"] == []  # open ones only
    everything = client.get("/admin/alerts", params={"state": "all"}, headers=admin_headers).json()["data"]
    assert [r["alert"]["id"] for r in everything] == [alert_id]
    problem(client.post(f"/admin/alerts/{alert_id}/ack", headers=admin_headers), 409, "alert_acknowledged")
    with db.session() as session:
        events = list(session.scalars(select(SecurityEvent).where(SecurityEvent.tag.like("monitor:%"))))
    # Audit mode (the default): the throttle active mode would have set is an event, nothing more.
    assert [e.tag for e in events] == [
        "monitor:alert:raised",
        "monitor:action:audited",
        "monitor:alert:acknowledged",
    ]
    assert events[1].data["would"] == "throttle"
    events.remove(events[1])
    assert events[1].actor == "admin-api" and events[1].data["alert"] == alert_id


def test_admin_alerts_refuse_bad_input_precisely(
    client: TestClient, settings: Settings, db: Database, world: World, admin_headers: dict[str, str]
) -> None:
    alert_id = raise_probing(settings, db, world)
    problem(client.get("/admin/alerts"), 401, "invalid_admin_key")
    problem(client.post(f"/admin/alerts/{alert_id}/ack", json={}), 401, "invalid_admin_key")
    problem(
        client.get("/admin/alerts", params={"detector": "nope"}, headers=admin_headers),
        422,
        "invalid_parameter",
    )
    problem(
        client.get("/admin/alerts", params={"state": "closed"}, headers=admin_headers),
        422,
        "invalid_parameter",
    )
    problem(client.get("/admin/alerts", params={"limit": 0}, headers=admin_headers), 422, "invalid_parameter")
    problem(
        client.get("/admin/alerts", params={"app": "no-such-app"}, headers=admin_headers),
        404,
        "app_not_found",
    )
    problem(client.get("/admin/alerts/alr_missing", headers=admin_headers), 404, "alert_not_found")
    problem(client.post("/admin/alerts/alr_missing/ack", headers=admin_headers), 404, "alert_not_found")
    problem(
        client.post(f"/admin/alerts/{alert_id}/ack", json={"note": "x" * 2001}, headers=admin_headers),
        422,
        "invalid_parameter",
    )
    problem(
        client.post(f"/admin/alerts/{alert_id}/ack", json={"nope": 1}, headers=admin_headers),
        422,
        "invalid_parameter",
    )
    # Nothing above acknowledged it.
    (row,) = client.get("/admin/alerts", headers=admin_headers).json()["data"]
    assert row["acknowledged"] is None


def test_cli_lists_shows_and_acknowledges(
    settings: Settings, db: Database, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    alert_id = raise_probing(settings, db, world)
    assert run(["alerts", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["alert"]["id"] == alert_id
    assert run(["alerts", "show", alert_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == row
    assert run(["alerts", "ack", alert_id, "--note", "seen", "--actor", "sec-oncall", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["acknowledged"]["by"] == "sec-oncall"
    assert run(["alerts", "ack", alert_id]) == 1
    assert "was acknowledged" in capsys.readouterr().err
    assert run(["alerts", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # open ones by default
    assert run(["alerts", "list", "--state", "acknowledged", "--json"]) == 0
    assert [r["alert"]["id"] for r in json.loads(capsys.readouterr().out)] == [alert_id]
    assert run(["alerts", "show", alert_id]) == 0
    assert "acknowledged by sec-oncall" in capsys.readouterr().out


def test_cli_bad_input_is_one_line(
    settings: Settings, db: Database, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["alerts", "show", "alr_missing"]) == 1
    assert capsys.readouterr().err.strip() == "error: no alert 'alr_missing'"
    assert run(["alerts", "list", "--detector", "nope"]) == 1
    assert capsys.readouterr().err.startswith("error: detector must be one of")
    assert run(["alerts", "list", "--limit", "0"]) == 2  # usage


def test_canary_contact_joins_the_alert_stream_once_a_day_per_connection(
    client: TestClient,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    admin_headers: dict[str, str],
) -> None:
    monkeypatch.setattr(settings, "canary_webhook_key", SecretStr("test-canary-webhook-key-0123"))
    hook = {"Authorization": "Bearer test-canary-webhook-key-0123"}
    _, made = connect_with_canaries(world, settings, "invoice-plus", world.tenants[0])
    for when in (NOW, NOW + timedelta(minutes=5)):
        body = {"address": made[0].email, "kind": "mail", "received_at": when.isoformat()}
        assert client.post("/canary/hits", json=body, headers=hook).status_code == 201
    rows = client.get("/admin/alerts", params={"detector": "canary_contact"}, headers=admin_headers).json()
    (row,) = rows["data"]
    alert = row["alert"]
    assert alert["severity"] == "critical" and alert["app"] == "invoice-plus"
    assert alert["company"] == world.tenants[0].company.public_id
    assert alert["observed"]["channel"] == "webhook" and alert["observed"]["kind"] == "mail"
    assert alert["observed"]["canary_alert"].startswith("cal_")
