"""A vendor's console pages over HTTP (the real ASGI app): registration (the client secret shown once),
scopes with justifications, volume and retention, the questionnaire, evidence upload (multipart,
capped), submission, secret rotation, alerts about its own apps; another vendor's app is a 404, every
form needs the CSRF token, every change is recorded with the person's name."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.app import create_app
from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.events.models import SecurityEvent
from appwarden.marketplace import versions
from appwarden.marketplace.service import check_client_secret, get_app
from appwarden.marketplace.standing import find
from appwarden.monitor.service import Detector, Finding, Severity, raise_alert
from console_screening import PDF, WHY, submitted_app
from console_world import PASSWORD, ConsoleWorld, build_console_world, form_token, sign_in

SLUG = "vendor-a-notes"


@pytest.fixture
def cw(db: Database) -> ConsoleWorld:
    return build_console_world(db)


def person(client: TestClient, username: str) -> TestClient:
    other = TestClient(client.app, base_url="http://testserver")
    assert sign_in(other, username, ConsoleWorld.logins.get(username, PASSWORD)) == 303
    return other


def events(db: Database, tag: str) -> list[SecurityEvent]:
    with db.session() as session:
        return list(session.scalars(select(SecurityEvent).where(SecurityEvent.tag == tag)))


def screening_url(slug: str = SLUG) -> str:
    return f"/console/vendor/apps/{slug}/screening"


def register(vendor: TestClient, slug: str = SLUG) -> str:
    """Register through the form; returns the page (with the secret)."""
    token = form_token(vendor.get("/console/vendor/apps/new").text)
    page = vendor.post(
        "/console/vendor/apps/new",
        data={
            "slug": slug,
            "name": "Notes",
            "redirect_uris": f"https://{slug}.example/cb",
            "csrf_token": token,
        },
    )
    assert page.status_code == 201, page.text
    return page.text


def post(vendor: TestClient, path: str, data: dict[str, object], **kw: Any) -> httpx.Response:
    token = form_token(vendor.get(screening_url()).text)
    return vendor.post(path, data={"csrf_token": token, **data}, follow_redirects=False, **kw)


def version(db: Database, slug: str = SLUG) -> versions.VersionView:
    with db.session() as session:
        return versions.version_view(session, find(session, slug))


def secret_of(html: str) -> str:
    match = re.search(r'data-testid="client-secret">([^<]+)<', html)
    assert match is not None
    return match.group(1)


def test_registration_shows_the_secret_once_and_records_the_person(
    client: TestClient, cw: ConsoleWorld
) -> None:
    vendor = person(client, "vendor-a-dev")
    secret = secret_of(register(vendor))
    with cw.db.session() as session:
        assert check_client_secret(get_app(session, SLUG), secret)
    again = vendor.get(screening_url())
    assert again.status_code == 200 and secret not in again.text
    (event,) = [e for e in events(cw.db, "app:listing:registered") if e.data["slug"] == SLUG]
    assert event.actor == "vendor-a-dev"
    assert SLUG in vendor.get("/console/vendor/apps").text
    taken = vendor.post(
        "/console/vendor/apps/new",
        data={
            "slug": SLUG,
            "name": "x",
            "redirect_uris": "https://x.example/cb",
            "csrf_token": form_token(again.text),
        },
    )
    assert taken.status_code == 409 and 'data-testid="error"' in taken.text


def test_rotation_shows_a_new_secret_once_and_the_old_one_stops(client: TestClient, cw: ConsoleWorld) -> None:
    vendor = person(client, "vendor-a-dev")
    old = secret_of(register(vendor))
    rotated = post(vendor, f"/console/vendor/apps/{SLUG}/rotate-secret", {})
    assert rotated.status_code == 200
    new = secret_of(rotated.text)
    with cw.db.session() as session:
        app = get_app(session, SLUG)
        assert check_client_secret(app, new) and not check_client_secret(app, old)
    assert [e.actor for e in events(cw.db, "app:secret:rotated")] == ["vendor-a-dev"]


def test_a_vendor_takes_an_app_to_submission_through_the_forms(client: TestClient, cw: ConsoleWorld) -> None:
    vendor = person(client, "vendor-a-dev")
    register(vendor)
    scopes = {
        "scope": ["customers.email:masked", "customers.points:raw", ""],
        "justification": [WHY, WHY, ""],
    }
    assert post(vendor, f"/console/vendor/apps/{SLUG}/scopes", scopes).status_code == 303
    volume = {"people_average": "50", "people_peak": "200", "requests_average": "5", "requests_peak": "30"}
    assert post(vendor, f"/console/vendor/apps/{SLUG}/volume", volume).status_code == 303
    retention = {
        "days_email": "30",
        "purpose_email": "sending receipts",
        "days_points": "0",
        "purpose_points": "shown, not kept",
    }
    assert post(vendor, f"/console/vendor/apps/{SLUG}/retention", retention).status_code == 303
    page = vendor.get(screening_url()).text
    questions = re.findall(r'name="answer_([a-z_.0-9]+)"', page)
    assert "encryption.at_rest" in questions and "assessment.last" not in questions  # tier 2
    answers = {f"answer_{q}": f"our written practice for {q}" for q in questions}
    assert post(vendor, f"/console/vendor/apps/{SLUG}/questionnaire", answers).status_code == 303
    assert "evidence.security_policy" in vendor.get(screening_url()).text
    uploaded = post(
        vendor,
        "/console/vendor/evidence",
        {"app": SLUG, "kind": "security_policy"},
        files={"file": ("policy.pdf", PDF, "application/pdf")},
    )
    assert uploaded.status_code == 303
    assert hashlib.sha256(PDF).hexdigest() in vendor.get(screening_url()).text
    submitted = post(vendor, f"/console/vendor/apps/{SLUG}/submit", {})
    assert submitted.status_code == 303, re.findall(r"data-testid=\"error\">([^<]*)", submitted.text)
    v = version(cw.db)
    assert v.status == "submitted"
    assert [r["scope"] for r in v.requested] == ["customers.email:masked", "customers.points:raw"]
    assert v.volume["people_per_day"] == {"average": 50, "peak": 200}
    assert v.retention["email"] == {"days": 30, "purpose": "sending receipts"}
    declared = events(cw.db, "app:version:declared")
    assert {e.data["what"] for e in declared} == {"scopes", "volume", "retention", "questionnaire"}
    assert {e.actor for e in declared} == {"vendor-a-dev"}
    for tag in ("screening:evidence:attached", "app:version:submitted"):
        assert [e.actor for e in events(cw.db, tag)] == ["vendor-a-dev"]
    frozen = post(vendor, f"/console/vendor/apps/{SLUG}/scopes", scopes)
    assert frozen.status_code == 409


def test_submission_lists_what_is_missing(client: TestClient, cw: ConsoleWorld) -> None:
    vendor = person(client, "vendor-a-dev")
    register(vendor)
    refused = post(vendor, f"/console/vendor/apps/{SLUG}/submit", {})
    assert refused.status_code == 422 and "scopes" in refused.text
    assert version(cw.db).status == "draft"


def test_another_vendors_app_is_not_found_by_any_path(client: TestClient, cw: ConsoleWorld) -> None:
    register(person(client, "vendor-a-dev"))
    other = person(client, "vendor-b-dev")
    token = form_token(other.get("/console/vendor/apps").text)
    assert other.get(screening_url()).status_code == 404
    for path in ("scopes", "volume", "retention", "questionnaire", "submit", "rotate-secret"):
        response = other.post(f"/console/vendor/apps/{SLUG}/{path}", data={"csrf_token": token})
        assert response.status_code == 404, path
    upload = other.post(
        "/console/vendor/evidence",
        data={"csrf_token": token, "app": SLUG, "kind": "security_policy"},
        files={"file": ("p.pdf", PDF, "application/pdf")},
    )
    assert upload.status_code == 404
    assert events(cw.db, "app:secret:rotated") == [] and events(cw.db, "screening:evidence:attached") == []
    assert SLUG not in other.get("/console/vendor/apps").text
    assert person(client, "reviewer1").get(screening_url()).status_code == 403


def test_every_form_needs_the_token(client: TestClient, cw: ConsoleWorld) -> None:
    vendor = person(client, "vendor-a-dev")
    register(vendor)
    forged = {"csrf_token": "forged", "scope": "customers.points:raw", "justification": WHY}
    assert vendor.post(f"/console/vendor/apps/{SLUG}/scopes", data=forged).status_code == 403
    assert vendor.post(f"/console/vendor/apps/{SLUG}/rotate-secret", data={}).status_code == 403
    assert (
        vendor.post(
            "/console/vendor/apps/new",
            data={"slug": "other-app", "name": "x", "redirect_uris": "https://x.example/cb"},
        ).status_code
        == 403
    )
    assert not version(cw.db).requested
    assert events(cw.db, "app:secret:rotated") == []


def test_evidence_over_the_size_limit_is_refused(settings: Settings, db: Database, cw: ConsoleWorld) -> None:
    small = settings.model_copy(update={"evidence_max_bytes": 100})
    with TestClient(create_app(small, db), base_url="http://testserver") as client:
        vendor = person(client, "vendor-a-dev")
        register(vendor)
        over = post(
            vendor,
            "/console/vendor/evidence",
            {"app": SLUG, "kind": "other"},
            files={"file": ("big.txt", b"x" * 101, "text/plain")},
        )
        assert over.status_code == 413
        within = post(
            vendor,
            "/console/vendor/evidence",
            {"app": SLUG, "kind": "other"},
            files={"file": ("ok.txt", b"x" * 100, "text/plain")},
        )
        assert within.status_code == 303
    assert len(events(db, "screening:evidence:attached")) == 1


def test_alerts_about_the_vendors_own_apps_only(
    client: TestClient, cw: ConsoleWorld, settings: Settings
) -> None:
    submitted_app(cw.db, settings.ensure_data_dir())
    now = utcnow()
    with cw.db.session() as session:
        for slug in ("vendor-a-app", "vendor-b-app"):
            finding = Finding(
                detector=Detector.PROBING,
                severity=Severity.MEDIUM,
                app_id=get_app(session, slug).id,
                company_id=None,
                observed={"slug": slug},
                baseline={},
                window_start=now - timedelta(hours=1),
                window_end=now,
                ledger_entries=[],
            )
            assert raise_alert(session, finding, cap=20, now=now)[1] is not None
    seen_by_a = person(client, "vendor-a-dev").get("/console/vendor/alerts").text
    assert seen_by_a.count('data-testid="alert"') == 1 and "vendor-a-app" in seen_by_a
    assert "vendor-b-app" not in seen_by_a
    seen_by_b = person(client, "vendor-b-dev").get("/console/vendor/alerts").text
    assert "vendor-b-app" in seen_by_b and "vendor-a-app" not in seen_by_b


def test_an_upload_without_a_file_shows_the_page_with_the_reason(
    client: TestClient, cw: ConsoleWorld
) -> None:
    vendor = person(client, "vendor-a-dev")
    register(vendor)
    refused = post(vendor, "/console/vendor/evidence", {"app": SLUG, "kind": "other"})
    assert refused.status_code == 422 and 'data-testid="error"' in refused.text
    assert "text/html" in refused.headers["content-type"]
    assert events(cw.db, "screening:evidence:attached") == []
