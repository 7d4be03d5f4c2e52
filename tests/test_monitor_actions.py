"""What alerts do (issue 12, points 3 and 4): audit vs active mode; throttle (a 429 at once through the
real ASGI app) and its reversal; restrict and relist; kill opening an incident; escalation; delivery to a
real local HTTP receiver (signature verified) and a real local SMTP server, retried after a failure and
never sent twice; bad policy values refused precisely."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from appwarden.app import create_app
from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import InvalidInput
from appwarden.events.models import SecurityEvent
from appwarden.incident.models import Incident
from appwarden.marketplace.models import App
from appwarden.monitor import outbox
from appwarden.monitor.delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from appwarden.monitor.models import Alert, OutboxItem
from appwarden.monitor.outbox import Channel
from appwarden.monitor.policy import Action, Detector, Mode, MonitorPolicy, Severity, load_policy
from appwarden.monitor.runtime import Monitor, monitor_of
from appwarden.monitor.service import Finding, Outcome, raise_alert
from conftest import World
from http_receiver import Receiver, serving
from test_reference_scenario import Inbox

NOW = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)
SECRET = "alert-webhook-secret-0123456789"


def write_policy(settings: Settings, text: str) -> None:
    """The policy file in force for apps and monitors built after this (``<data_dir>/monitor.toml``)."""
    (settings.data_dir / "monitor.toml").write_text(text, encoding="utf-8")


def probe(m: Monitor, world: World, at: datetime, tenant: int = 0, n: int = 3) -> list[str]:
    """Refused calls enough for a probing alert (high) at ``at``; the alert ids the run raised."""
    for _ in range(n):
        m.refused(world.apps["invoice-plus"][0], world.tenants[tenant].company.id, 404, at)
    return m.run_once(at).raised


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def tags(db: Database, prefix: str = "monitor:app:") -> list[str]:
    with db.session() as session:
        query = (
            select(SecurityEvent.tag).where(SecurityEvent.tag.like(f"{prefix}%")).order_by(SecurityEvent.id)
        )
        return list(session.scalars(query))


def alert_row(db: Database, public_id: str) -> Alert:
    with db.session() as session:
        alert = session.scalar(select(Alert).where(Alert.public_id == public_id))
        assert alert is not None
        session.expunge(alert)
        return alert


def app_state(db: Database, world: World, slug: str = "invoice-plus") -> str:
    with db.session() as session:
        app = session.get(App, world.apps[slug][0])
        assert app is not None
        return app.listing_state


def test_audit_mode_raises_and_records_what_active_mode_would_do_but_leaves_the_app_alone(
    settings: Settings, db: Database, world: World
) -> None:
    write_policy(settings, "probing_refusals_per_hour = 3\n")
    m = Monitor(settings, db)
    assert m.policy.mode_of(Detector.PROBING) is Mode.AUDIT  # the default
    (alert_id,) = probe(m, world, NOW)
    assert alert_row(db, alert_id).action == "alert"
    assert app_state(db, world) == "listed" and tags(db) == []
    with db.session() as session:
        audited = session.scalar(select(SecurityEvent).where(SecurityEvent.tag == "monitor:action:audited"))
        assert audited is not None and audited.data["would"] == "throttle"


def test_a_throttle_lowers_the_quota_at_once_and_unthrottle_gives_it_back(
    settings: Settings, db: Database, world: World, admin_headers: dict[str, str]
) -> None:
    write_policy(settings, 'mode = "active"\nprobing_refusals_per_hour = 3\nthrottle_factor = 0.2\n')
    first = bearer(world.connect("invoice-plus", world.tenants[0]))
    second = bearer(world.connect("invoice-plus", world.tenants[1]))
    app = create_app(settings.model_copy(update={"declared_requests_per_minute_peak": 10}), db)
    with TestClient(app) as client:
        for _ in range(3):  # under the usual 10 a minute
            assert client.get("/v1/customers", headers=first).status_code == 200
        (alert_id,) = probe(monitor_of(app), world, NOW)
        refused = client.get("/v1/customers", headers=first)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        body = refused.json()
        assert body["code"] == "rate_limited" and body["throttled"] is True and body["limit"] == 2
        assert alert_id not in refused.text  # the vendor is told it is throttled, not why
        assert client.get("/v1/customers", headers=second).status_code == 200  # another company: not
        assert alert_row(db, alert_id).action == "throttle"
        (row,) = client.get("/admin/alerts/throttles", headers=admin_headers).json()["data"]
        assert row["alert"] == alert_id and row["state"] == "in_force" and row["factor"] == 0.2
        assert row["company"] == world.tenants[0].company.public_id

        lifted = client.post(
            "/admin/alerts/unthrottle",
            json={"alert": alert_id, "reason": "a bad id cache at the vendor, fixed"},
            headers=admin_headers,
        )
        assert lifted.status_code == 200, lifted.text
        assert lifted.json()["data"][0]["lifted"]["by"] == "admin-api"
        assert client.get("/v1/customers", headers=first).status_code == 200  # at once, this worker
        again = client.post(
            "/admin/alerts/unthrottle", json={"app": "invoice-plus", "reason": "x"}, headers=admin_headers
        )
        assert again.status_code == 409 and again.json()["code"] == "not_throttled"
        assert client.get("/admin/alerts/throttles", headers=admin_headers).json()["data"] == []
    assert tags(db) == ["monitor:app:throttled", "monitor:app:unthrottled"]


def test_another_worker_sees_a_throttle_through_the_database(
    settings: Settings, db: Database, world: World
) -> None:
    write_policy(settings, 'mode = "active"\nprobing_refusals_per_hour = 3\nthrottle_cache_seconds = 0\n')
    token = bearer(world.connect("invoice-plus", world.tenants[0]))
    quick = settings.model_copy(update={"declared_requests_per_minute_peak": 10})
    detecting, serving = create_app(quick, db), create_app(quick, db)
    with TestClient(serving) as client:
        assert client.get("/v1/customers", headers=token).status_code == 200
        probe(monitor_of(detecting), world, NOW)  # another worker's run throttles (factor 0.1: 1 a minute)
        assert client.get("/v1/customers", headers=token).status_code == 429


def test_restrict_by_policy_and_relist_by_the_operator(
    settings: Settings, db: Database, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    write_policy(settings, 'mode = "active"\nprobing_refusals_per_hour = 3\n[actions]\nhigh = "restrict"\n')
    (alert_id,) = probe(Monitor(settings, db), world, NOW)
    assert app_state(db, world) == "restricted"
    assert alert_row(db, alert_id).action == "restrict"
    assert tags(db) == ["monitor:app:restricted"]
    assert run(["apps", "relist", "invoice-plus", "--reason", "reviewed: a vendor bug", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["listing_state"] == "listed"
    assert app_state(db, world) == "listed"


def test_kill_by_policy_opens_an_incident_and_cuts_the_app_off(
    settings: Settings, db: Database, world: World
) -> None:
    write_policy(
        settings,
        'mode = "active"\nprobing_refusals_per_hour = 3\n[detector_actions.probing]\nhigh = "kill"\n',
    )
    token = bearer(world.connect("invoice-plus", world.tenants[0]))
    app = create_app(settings, db)
    with TestClient(app) as client:
        (alert_id,) = probe(monitor_of(app), world, NOW)
        cut_off = client.get("/v1/customers", headers=token)
        assert cut_off.status_code == 403 and cut_off.json()["code"] == "app_delisted"
    assert app_state(db, world) == "delisted" and alert_row(db, alert_id).action == "kill"
    with db.session() as session:
        incident = session.scalar(select(Incident))
        assert incident is not None and incident.status == "open" and alert_id in incident.reason
        killed = session.scalar(select(SecurityEvent).where(SecurityEvent.tag == "monitor:app:killed"))
        assert killed is not None and killed.data["incident"] == incident.public_id


def test_repeated_alerts_escalate_unless_the_operator_reversed_the_last_action(
    settings: Settings, db: Database, world: World
) -> None:
    write_policy(settings, 'mode = "active"\nprobing_refusals_per_hour = 3\n')
    m = Monitor(settings, db)
    (first,) = probe(m, world, NOW)
    assert alert_row(db, first).action == "throttle"
    assert run(["alerts", "unthrottle", first, "--reason", "false positive"]) == 0
    (second,) = probe(m, world, NOW + timedelta(hours=2))
    assert alert_row(db, second).action == "throttle"  # the lifted throttle does not count
    (third,) = probe(m, world, NOW + timedelta(hours=4), tenant=1)  # the same app, another company
    assert alert_row(db, third).action == "restrict" and app_state(db, world) == "restricted"
    (fourth,) = probe(m, world, NOW + timedelta(hours=6))
    assert alert_row(db, fourth).action == "restrict"  # the ceiling: a kill stays a human decision
    (late,) = probe(m, world, NOW + timedelta(hours=40), tenant=1)  # outside 24 h of the last action
    assert alert_row(db, late).action == "throttle"  # the ladder starts again (on top of the restriction)
    assert app_state(db, world) == "restricted"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as r:
        yield r


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, str]]:
    box = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


def delivering(settings: Settings, url: str, smtp_url: str | None = None) -> Settings:
    return settings.model_copy(
        update={
            "alert_webhook_url": url,
            "alert_webhook_secret": SecretStr(SECRET),
            "smtp_url": SecretStr(smtp_url) if smtp_url else None,
            "alert_mail_to": "soc@example.jp",
        }
    )


def test_every_alert_goes_to_a_signed_webhook_and_by_mail(
    settings: Settings,
    db: Database,
    world: World,
    receiver: Receiver,
    smtp: tuple[Inbox, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    box, smtp_url = smtp
    m = Monitor(delivering(settings, receiver.url, smtp_url), db, MonitorPolicy(probing_refusals_per_hour=3))
    (alert_id,) = probe(m, world, NOW)
    ((headers, body),) = receiver.requests
    assert verify(SECRET, headers[SIGNATURE_HEADER.lower()], body, now=time.time())
    assert headers[SIGNATURE_HEADER.lower()].startswith(f"t={headers[TIMESTAMP_HEADER.lower()]},v1=")
    assert not verify(
        SECRET, headers[SIGNATURE_HEADER.lower()], body.replace(b"probing", b"mirror"), now=time.time()
    )
    assert not verify("another-secret", headers[SIGNATURE_HEADER.lower()], body, now=time.time())
    assert not verify(SECRET, headers[SIGNATURE_HEADER.lower()], body, now=time.time() + 301)  # a replay
    document = json.loads(body)
    assert document["type"] == "monitor.alert" and document["alert"]["id"] == alert_id
    assert set(document["alert"]) == {
        "id", "detector", "severity", "app", "company", "observed", "baseline", "window", "action",
        "ledger_entries", "raised_at",
    }  # fmt: skip
    assert headers["idempotency-key"] == alert_id and headers["content-type"] == "application/json"
    ((to, message),) = box.received
    assert to == ["soc@example.jp"] and "probing on invoice-plus" in message["Subject"]
    assert alert_id in message.get_content()
    assert tags(db, "monitor:alert:delivered") == ["monitor:alert:delivered"] * 2
    assert SECRET not in caplog.text and receiver.url not in caplog.text
    assert m.run_once(NOW + timedelta(minutes=5)).delivered == 0  # sent once
    assert len(receiver.requests) == 1 and len(box.received) == 1


def test_a_failed_delivery_is_retried_by_a_later_run_and_never_loses_the_alert(
    settings: Settings, db: Database, world: World, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [500]
    m = Monitor(delivering(settings, receiver.url), db, MonitorPolicy(probing_refusals_per_hour=3))
    for _ in range(3):
        m.refused(world.apps["invoice-plus"][0], world.tenants[0].company.id, 404, NOW)
    first = m.run_once(NOW)
    assert len(first.raised) == 1 and first.delivered == 0 and first.delivery_failures == 1
    with db.session() as session:
        item = session.scalar(select(OutboxItem).where(OutboxItem.channel == "webhook"))
        mail = session.scalar(select(OutboxItem).where(OutboxItem.channel == "mail"))
        assert item is not None and item.done_at is None and item.attempts == 1
        assert item.last_error == "webhook answered HTTP 500"
        assert mail is not None and mail.outcome == "skipped: no SMTP server configured"
    assert m.run_once(NOW + timedelta(seconds=30)).delivered == 0  # backing off: one run interval
    assert m.run_once(NOW + timedelta(seconds=61)).delivered == 1
    assert [h["idempotency-key"] for h, _ in receiver.requests] == [first.raised[0]] * 2
    assert m.run_once(NOW + timedelta(minutes=10)).delivered == 0
    assert len(receiver.requests) == 2
    assert tags(db, "monitor:alert:deliver") == ["monitor:alert:delivery-failed", "monitor:alert:delivered"]
    assert SECRET not in caplog.text and receiver.url not in caplog.text


def test_an_outbox_row_is_claimed_by_one_worker_only(settings: Settings, db: Database, world: World) -> None:
    finding = Finding(
        Detector.PROBING,
        Severity.HIGH,
        world.apps["invoice-plus"][0],
        world.tenants[0].company.id,
        observed={"refused_calls": 3},
        baseline={"refused_calls_per_hour_threshold": 3},
        window_start=NOW,
        window_end=NOW + timedelta(hours=1),
        ledger_entries=[],
    )
    with db.session() as session:
        outcome, _ = raise_alert(session, finding, cap=20, now=NOW)
    assert outcome is Outcome.RAISED
    channels = [Channel.WEBHOOK, Channel.MAIL]
    won = outbox.claim(db, channels, worker="a", now=NOW)
    assert len(won) == 2
    assert outbox.claim(db, channels, worker="b", now=NOW) == []
    # A worker that died holding the claim: its lease runs out and another takes the rows.
    assert outbox.claim(db, channels, worker="b", now=NOW + outbox.LEASE + timedelta(seconds=1)) == won


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('mode = "aggressive"\n', "mode: Input should be 'audit' or 'active'"),
        ('[modes]\nnope = "active"\n', "modes.nope: Input should be 'over_declaration'"),
        (
            '[actions]\nhigh = "nuke"\n',
            "actions.high: Input should be 'alert', 'throttle', 'restrict' or 'kill'",
        ),
        (
            '[detector_actions.mirror]\nsevere = "kill"\n',
            "detector_actions.mirror.severe: Input should be 'low'",
        ),
        ("throttle_factor = 1.5\n", "throttle_factor: Input should be less than 1"),
        ('escalation_ceiling = "delete"\n', "escalation_ceiling: Input should be 'alert'"),
        ('restrict_policy = "ban"\n', "restrict_policy: Input should be 'token' or 'pause'"),
    ],
)
def test_bad_policy_values_stop_start_up_with_a_precise_error(
    settings: Settings, db: Database, text: str, message: str
) -> None:
    write_policy(settings, text)
    with pytest.raises(InvalidInput) as caught:
        create_app(settings, db)
    assert message in caught.value.detail
    assert str(settings.data_dir / "monitor.toml") in caught.value.detail


def test_the_single_switch_and_per_detector_overrides(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'mode = "active"\n[modes]\nunusual_hours = "audit"\n'
        '[detector_actions.canary_contact]\ncritical = "kill"\n'
    )
    policy = load_policy(settings.model_copy(update={"monitor_policy": path}))
    assert policy.mode_of(Detector.MIRROR) is Mode.ACTIVE
    assert policy.mode_of(Detector.UNUSUAL_HOURS) is Mode.AUDIT
    assert policy.first_action(Detector.CANARY_CONTACT, Severity.CRITICAL) is Action.KILL
    assert policy.first_action(Detector.MIRROR, Severity.CRITICAL) is Action.RESTRICT
    assert policy.first_action(Detector.MIRROR, Severity.MEDIUM) is Action.ALERT


def test_unthrottle_refuses_bad_input_precisely(
    client: TestClient,
    settings: Settings,
    db: Database,
    world: World,
    admin_headers: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    def problem(response: Any, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code

    url = "/admin/alerts/unthrottle"
    problem(client.post(url, json={"app": "invoice-plus", "reason": "x"}), 401, "invalid_admin_key")
    problem(client.post(url, json={"reason": "x"}, headers=admin_headers), 422, "invalid_parameter")
    both = {"app": "invoice-plus", "alert": "alr_x", "reason": "x"}
    problem(client.post(url, json=both, headers=admin_headers), 422, "invalid_parameter")
    problem(client.post(url, json={"app": "invoice-plus"}, headers=admin_headers), 422, "invalid_parameter")
    blank = {"app": "invoice-plus", "reason": "  "}
    problem(client.post(url, json=blank, headers=admin_headers), 422, "reason_required")
    problem(
        client.post(url, json={"app": "nope", "reason": "x"}, headers=admin_headers), 404, "app_not_found"
    )
    missing = {"alert": "alr_missing", "reason": "x"}
    problem(client.post(url, json=missing, headers=admin_headers), 404, "alert_not_found")
    problem(
        client.post(url, json={"app": "invoice-plus", "reason": "x"}, headers=admin_headers),
        409,
        "not_throttled",
    )
    problem(
        client.get("/admin/alerts/throttles", params={"app": "nope"}, headers=admin_headers),
        404,
        "app_not_found",
    )
    assert run(["alerts", "unthrottle", "invoice-plus", "--reason", "x"]) == 1
    assert capsys.readouterr().err.strip() == "error: app invoice-plus has no throttle in force"
    assert run(["alerts", "unthrottle", "nope", "--reason", "x"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert run(["alerts", "throttles", "--all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
