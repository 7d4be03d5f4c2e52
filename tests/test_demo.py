"""``appwarden demo``: the real CLI on a small platform, its JSON checked against the database it built.

The summary's counts come from the ledger index; here they are recomputed independently from the
platform tables and the connections the owners consented to, so a broker that leaked an unconsented
field, or a ledger that missed a page, would show up as a mismatch.
"""

from __future__ import annotations

import json
import socket
from collections import defaultdict
from typing import Any

import pytest
from rich.progress import Progress
from sqlalchemy import func, select

from appwarden.canary.models import Canary
from appwarden.cli import run
from appwarden.config import Settings
from appwarden.db.session import get_database
from appwarden.demo.catalog import APPS, GUARDED_SCENARIO, INVOICE_PLUS, plan_incident
from appwarden.demo.runner import run_demo
from appwarden.events.models import SecurityEvent
from appwarden.events.service import EventTag
from appwarden.ledger.chain import decode_payload
from appwarden.ledger.models import LedgerEntry, LedgerHead
from appwarden.marketplace.models import App
from appwarden.marketplace.scopes import CUSTOMER_FIELDS, effective_scopes, field_modes
from appwarden.monitor.models import Alert
from appwarden.oauth.models import Connection
from appwarden.obligations.models import ErasureAttestation, ErasureRequest
from appwarden.platform.models import Company, Customer, Store, User
from appwarden.platform.service import authenticate_user

REVIEW_DECIDED = EventTag.REVIEW_DECIDED.value


def _demo_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = run(["demo", "--no-serve", "--json", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return dict(json.loads(captured.out))  # stdout is exactly one JSON document


def _expected_from_db(settings: Settings) -> dict[str, dict[str, Any]]:
    """What each app could see given its consent: per field, the people of its connected companies who
    have a value; the distinct home stores of those people; the number of connected companies."""
    db = get_database(settings)
    expected: dict[str, dict[str, Any]] = {}
    with db.session() as session:
        columns = [getattr(Customer, f) for f in CUSTOMER_FIELDS]
        # Canaries are delivered (each to its one connection) but are nobody: never counted.
        rows = session.execute(
            select(Customer.company_id, Customer.home_store_id, *columns).where(Customer.is_canary.is_(False))
        ).all()
        by_company: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_company[row[0]].append(row)
        for app in session.scalars(select(App)):
            conns = list(session.scalars(select(Connection).where(Connection.app_id == app.id)))
            fields: dict[str, int] = defaultdict(int)
            stores: set[int] = set()
            for conn in conns:
                granted = field_modes(effective_scopes(app.approved_scopes, conn.scopes))
                for row in by_company[conn.company_id]:
                    values = dict(zip(CUSTOMER_FIELDS, row[2:], strict=True))
                    present = [f for f in granted if values[f] is not None]
                    for f in present:
                        fields[f] += 1
                    if present:
                        stores.add(row[1])
            expected[app.slug] = {"companies": len(conns), "stores": len(stores), "fields": dict(fields)}
    return expected


def assert_screened_marketplace(settings: Settings, summary: dict[str, Any]) -> None:
    """The marketplace was screened: every lifecycle state is on show, invoice-plus alone is
    grandfathered (its first audit due at once, so overdue), one listed app's lapsed audit restricted it,
    and raw-PII apps were approved by two different reviewers, the others by one, drafts by nobody."""
    states = {a["slug"]: a for a in summary["marketplace"]}
    assert {a["state"] for a in states.values()} == {
        "draft",
        "submitted",
        "in_review",
        "listed",
        "restricted",
        "delisted",
    }
    assert [s for s, a in states.items() if a["grandfathered"]] == [INVOICE_PLUS]
    assert states[INVOICE_PLUS]["audit_overdue"] and states[INVOICE_PLUS]["audit_due_at"] is None
    assert summary["restricted_by_audit"] == ["smile-crm"] and states["smile-crm"]["state"] == "restricted"
    with get_database(settings).session() as session:
        ids = {a.slug: a.id for a in session.scalars(select(App))}
        decided = [
            (e.app_id, e.actor)
            for e in session.scalars(select(SecurityEvent).where(SecurityEvent.tag == REVIEW_DECIDED))
        ]
    assert len({actor for app_id, actor in decided if app_id == ids["booking-go"]}) == 2
    assert len([1 for app_id, _ in decided if app_id == ids["loyalty-stamp"]]) == 1
    assert not [1 for app_id, _ in decided if app_id in (ids["table-order"], ids[INVOICE_PLUS])]


def assert_obligations_story(settings: Settings, story: dict[str, Any]) -> None:
    """The weeks after the traffic, recounted from the tables: three connections revoked by their owners,
    a signed company.redact for each delivered to the demo's vendor receiver and naming everyone the
    ledger says the app received from that company; two attestations, one overdue; a canary of the
    point-hub connection mailed after its erasure was attested raised erasure_contradicted with it."""
    assert set(story["disconnected"]) == {"booking-go", "loyalty-stamp", "point-hub"}
    assert story["webhooks_received"] == sorted(story["disconnected"]) and story["unsigned_refused"] == 0
    states = {r["app"]: (r["topic"], r["status"], r["attestation"]) for r in story["requests"]}
    assert states == {
        "booking-go": ("company.redact", "delivered", "attested"),
        "point-hub": ("company.redact", "delivered", "attested"),
        "loyalty-stamp": ("company.redact", "delivered", "overdue"),
    }
    with get_database(settings).session() as session:
        apps = {a.id: a.slug for a in session.scalars(select(App))}
        for slug, public_id in story["disconnected"].items():
            conn = session.scalar(select(Connection).where(Connection.public_id == public_id))
            assert conn is not None and apps[conn.app_id] == slug and conn.status == "revoked"
            request = session.scalar(select(ErasureRequest).where(ErasureRequest.app_id == conn.app_id))
            assert request is not None and request.payload["connection"] == public_id
            ids: set[int] = set()
            for e in session.scalars(
                select(LedgerEntry).where(
                    LedgerEntry.app_id == conn.app_id, LedgerEntry.company_id == conn.company_id
                )
            ):
                for bitmap in decode_payload(e.payload).values():
                    ids.update(bitmap)
            received = set(session.scalars(select(Customer.public_id).where(Customer.id.in_(ids))))
            assert sorted(request.payload["customers"]) == sorted(received) and received
        attested = {apps[a.app_id] for a in session.scalars(select(ErasureAttestation))}
        assert attested == {"booking-go", "point-hub"}
        alerts = {
            (apps[a.app_id], a.detector): a
            for a in session.scalars(
                select(Alert).where(Alert.detector.in_(["erasure_contradicted", "attestation_overdue"]))
            )
        }
    assert set(alerts) == {("point-hub", "erasure_contradicted"), ("loyalty-stamp", "attestation_overdue")}
    contradicted = alerts[("point-hub", "erasure_contradicted")]
    assert contradicted.severity == "high" and story["canary_mailed"]
    assert contradicted.observed["canary"] == story["canary_mailed"]["customer"]
    assert contradicted.observed["contacted_at"] == story["calendar"]["canary_mailed"]


def test_small_demo_json_matches_the_database(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    summary = _demo_json(capsys, "--companies", "3", "--stores", "6", "--customers", "600", "--seed", "11")

    db = get_database(settings)
    with db.session() as session:
        real = select(func.count()).select_from(Customer).where(Customer.is_canary.is_(False))
        assert summary["customers"] == session.scalar(real) == 600
        # Canaries are on by default: every consented connection got its own.
        connections = session.scalar(select(func.count()).select_from(Connection)) or 0
        assert summary["canaries"] == session.scalar(select(func.count()).select_from(Canary))
        assert summary["canaries"] == settings.canaries_per_connection * connections > 0
        assert summary["companies"] == session.scalar(select(func.count()).select_from(Company)) == 3
        assert summary["stores"] == session.scalar(select(func.count()).select_from(Store)) == 6
        assert summary["ledger"]["entries"] == session.scalar(select(func.count()).select_from(LedgerEntry))
        assert summary["ledger"]["head"] == session.scalar(select(LedgerHead.hash))
        # Every connection was granted by its company's owner through the consent page.
        for conn in session.scalars(select(Connection)):
            owner = session.get(User, conn.granted_by_user_id)
            assert owner is not None and owner.role == "company_owner"
            assert owner.company_id == conn.company_id
        unticked = sum(
            1
            for conn, app in session.execute(select(Connection, App).join(App, App.id == Connection.app_id))
            if set(conn.scopes) != set(app.approved_scopes)
        )

    assert [a["slug"] for a in summary["apps"]] == [a.slug for a in APPS]
    expected = _expected_from_db(settings)
    for app in summary["apps"]:
        assert app == {"slug": app["slug"], **expected[app["slug"]]}, app["slug"]
    # Some owners unticked a field, and the ledger shows they were respected (checked above).
    assert unticked >= 1
    assert_screened_marketplace(settings, summary)
    assert_obligations_story(settings, summary["obligations"])
    invoice = next(a for a in summary["apps"] if a["slug"] == INVOICE_PLUS)
    assert (
        set(invoice["fields"]) == {"name", "phone"} and invoice["fields"]["phone"] < invoice["fields"]["name"]
    )


def test_demo_logins_work_and_belong_to_their_company(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _demo_json(capsys, "--companies", "2", "--stores", "3", "--customers", "120")
    assert len(summary["logins"]) == 2
    with get_database(settings).session() as session:
        for login in summary["logins"]:
            assert login["role"] == "company_owner"
            user = authenticate_user(session, login["username"], login["password"])
            assert user is not None and user.role == "company_owner"
            company = session.get(Company, user.company_id)
            assert company is not None
            assert (company.public_id, company.name) == (login["company_id"], login["company"])
            assert authenticate_user(session, login["username"], login["password"] + "x") is None
        owners = select(func.count()).select_from(User).where(User.role == "company_owner")
        assert session.scalar(owners) == 2  # the reviewers are staff, not logins
    assert summary["admin_api_key"] == settings.admin_key
    assert summary["base_url"] == "http://127.0.0.1:8000"


def test_demo_rerun_wipes_and_rebuilds(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--companies", "2", "--stores", "2", "--customers", "80")
    first = _demo_json(capsys, *args)
    code = run(["demo", "--no-serve", "--json", *args])
    captured = capsys.readouterr()
    assert code == 0
    assert "wiped" in captured.err
    second = json.loads(captured.out)
    # The same seed builds the same platform, not a doubled one.
    assert second["customers"] == first["customers"] == 80
    assert second["apps"] == first["apps"]
    assert second["ledger"]["entries"] == first["ledger"]["entries"]


def test_demo_refuses_a_busy_port_before_building(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = run(["demo", "--companies", "1", "--stores", "1", "--customers", "10", "--port", str(port)])
    captured = capsys.readouterr()
    assert code == 1
    assert f"cannot serve on 127.0.0.1:{port}" in captured.err
    with get_database(settings).session() as session:  # nothing was built
        assert session.scalar(select(func.count()).select_from(Company)) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario"),
        (["--scenario", "incident-2026", "--companies", "3"], "cannot be combined"),
        (["--companies", "4", "--stores", "2"], "--stores must be at least"),
        (["--companies", "0"], "--companies must be at least 1"),
    ],
)
def test_demo_bad_options_are_one_line_errors(
    settings: Settings, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = run(["demo", "--no-serve", "--json", *args])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1


def test_incident_construction_is_exact_at_reduced_size(settings: Settings) -> None:
    """The scenario's code path with small figures: the invoice app's ledger counts are exactly the
    figures asked for, and only its companies are counted."""
    plan = plan_incident(
        seed=5, companies=5, stores=10, invoice_companies=3, names=1_537, phones=1_291, other_customers=400
    )
    with Progress(disable=True) as bar:
        summary = run_demo(settings, plan, progress=bar)
    assert_screened_marketplace(settings, summary)
    invoice = next(a for a in summary["apps"] if a["slug"] == INVOICE_PLUS)
    assert invoice["fields"] == {"name": 1_537, "phone": 1_291}
    assert invoice["companies"] == 3
    assert summary["customers"] == 1_937
    expected = _expected_from_db(settings)
    for app in summary["apps"]:
        assert app == {"slug": app["slug"], **expected[app["slug"]]}, app["slug"]
    # The month ran with the monitor auditing: the pull raised alerts on invoice-plus before the dump
    # appeared, nothing was done about them, and the other apps' traffic raised none.
    monitor = summary["monitor"]
    assert monitor["mode"] == "audit" and "guarded" not in summary
    on_invoice = [a for a in monitor["alerts"] if a["app"] == INVOICE_PLUS]
    assert on_invoice and all(a["action"] == "alert" for a in on_invoice)
    assert all(monitor["pull_started_at"] <= a["raised_at"] < monitor["leaked_at"] for a in on_invoice)
    assert [a for a in monitor["alerts"] if a["app"] != INVOICE_PLUS] == []


@pytest.mark.slow
def test_incident_2026_full_size(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """The reference scenario at its real size: 136,346 names and 114,951 phones, from the ledger."""
    summary = _demo_json(capsys, "--scenario", "incident-2026")
    assert_screened_marketplace(settings, summary)
    invoice = next(a for a in summary["apps"] if a["slug"] == INVOICE_PLUS)
    assert invoice["fields"] == {"name": 136_346, "phone": 114_951}
    assert invoice["companies"] == 8
    assert summary["companies"] == 12
    # The monitor audited the month: alerts on invoice-plus for each of its 8 companies, raised after
    # the pull began and before the dump appeared, none acted on, none on any other app.
    monitor = summary["monitor"]
    assert monitor["mode"] == "audit"
    on_invoice = [a for a in monitor["alerts"] if a["app"] == INVOICE_PLUS]
    assert len({a["company"] for a in on_invoice}) == 8
    assert all(monitor["pull_started_at"] <= a["raised_at"] < monitor["leaked_at"] for a in on_invoice)
    assert {a["action"] for a in on_invoice} == {"alert"}
    assert [a for a in monitor["alerts"] if a["app"] != INVOICE_PLUS] == []


def test_guarded_replay_reports_from_the_ledger(settings: Settings) -> None:
    """The guarded replay (default policy, active) at test size: its report's keys, and its people
    counted again here from the ledger entries (not the index the report read)."""
    plan = plan_incident(
        seed=5,
        companies=5,
        stores=10,
        invoice_companies=3,
        names=1_537,
        phones=1_291,
        other_customers=400,
        scenario=GUARDED_SCENARIO,
    )
    with Progress(disable=True) as bar:
        summary = run_demo(settings, plan, progress=bar)
    guarded = summary["guarded"]
    assert set(guarded) >= {
        "app",
        "raw_people",
        "first_alert_after_people",
        "first_alert_at",
        "actions",
        "false_alerts",
    }
    assert guarded["app"] == INVOICE_PLUS and summary["monitor"]["mode"] == "active"
    with get_database(settings).session() as session:
        app = session.scalars(select(App).where(App.slug == INVOICE_PLUS)).one()
        canaries = set(session.scalars(select(Canary.customer_id)))
        raw: set[int] = set()
        for entry in session.scalars(select(LedgerEntry).where(LedgerEntry.app_id == app.id)):
            for (field, mode), ids in decode_payload(entry.payload).items():
                if mode == "raw" and field in ("name", "phone"):
                    raw.update(ids)
    assert guarded["raw_people"] == len(raw - canaries) > 0
    # The mirror was noticed: an alert on invoice-plus, within the replay, after the pull began.
    assert guarded["first_alert_at"] is not None
    assert (
        summary["monitor"]["pull_started_at"] <= guarded["first_alert_at"] < summary["monitor"]["leaked_at"]
    )
    assert 0 < guarded["first_alert_after_people"] <= 1_537
    # The monitor acted (active mode): each action is one of invoice-plus's alerts, past the alert step.
    assert guarded["actions"]
    assert {a["action"] for a in guarded["actions"]} <= {"throttle", "restrict", "kill"}
    assert all(a["did"] and not a["did"].startswith("not ") for a in guarded["actions"])
    # Silent on the other apps' normal traffic over the month, onboarding syncs included.
    others = [a for a in summary["monitor"]["alerts"] if a["app"] != INVOICE_PLUS]
    assert guarded["false_alerts"] == len(others) == 0, others
