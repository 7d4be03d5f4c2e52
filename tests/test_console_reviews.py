"""The reviewer's console pages over HTTP (the real ASGI app): the queue, the review sheet with
justifications, answers and evidence (downloadable, by hash), decisions recorded under the reviewer's
name with screening's rules (weaker mode, a second sign-off by another person, no vendor's own
reviewer), CSRF on every decision, the audits due, and the role boundary."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from appwarden.config import Settings
from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.demo.vendor_receiver import start
from appwarden.events.models import SecurityEvent
from appwarden.marketplace import versions
from appwarden.marketplace.standing import find
from appwarden.obligations.erasure import set_endpoint
from console_screening import PDF, SLUG, WHY, add_reviewers, submitted_app
from console_world import PASSWORD, ConsoleWorld, build_console_world, form_token, sign_in


@pytest.fixture
def cw(db: Database, settings: Settings) -> ConsoleWorld:
    world = build_console_world(db)
    add_reviewers(db)
    submitted_app(db, settings.ensure_data_dir())
    return world


def person(client: TestClient, username: str) -> TestClient:
    """A fresh client (its own cookies) signed in as ``username``."""
    other = TestClient(client.app, base_url="http://testserver")
    assert sign_in(other, username, ConsoleWorld.logins.get(username, PASSWORD)) == 303
    return other


def decision_form(html: str, **verdicts: str) -> dict[str, str]:
    """The sheet's checklist as the browser would post it: each scope approved unless ``verdicts``
    names its field (e.g. ``phone="weakened:masked"``), every answer accepted."""
    data = {"csrf_token": form_token(html), "version": re.search(r'name="version" value="(\d+)"', html)[1]}  # type: ignore[index]
    for i, scope in re.findall(r'name="scope_(\d+)" value="([^"]+)"', html):
        field = scope.split(".")[1].split(":")[0] if scope.startswith("customers.") else scope
        data[f"scope_{i}"] = scope
        data[f"verdict_{i}"] = verdicts.get(field, "approved")
        data[f"reason_{i}"] = "masked digits are enough for the invoice" if field in verdicts else ""
    for j, question in re.findall(r'name="question_(\d+)" value="([^"]+)"', html):
        data[f"question_{j}"] = question
        data[f"ok_{j}"] = "on"
    return data


def check_endpoint_from_the_sheet(reviewer: TestClient, cw: ConsoleWorld) -> None:
    """The vendor registers an endpoint that answers as it must (a real receiver verifying signatures);
    the reviewer presses "Run the check" on the sheet, which then says it passed."""
    secrets: dict[str, str] = {}
    url, stop = start(secrets)
    try:
        with cw.db.session() as session:
            settings = reviewer.app.state.settings  # type: ignore[attr-defined]
            _, secrets[SLUG] = set_endpoint(
                session, settings, SLUG, f"{url}/{SLUG}", actor="vendor", now=utcnow()
            )
        sheet = reviewer.get(f"/console/reviews/{SLUG}").text
        assert 'data-ready="no"' in sheet
        ran = reviewer.post(
            f"/console/reviews/{SLUG}/endpoint-check",
            data={"csrf_token": form_token(sheet)},
            follow_redirects=False,
        )
    finally:
        stop()
    assert ran.status_code == 303 and "checked=1" in ran.headers["location"]
    assert 'data-ready="yes"' in reviewer.get(ran.headers["location"]).text


def decide(
    reviewer: TestClient, outcome: str = "approve", reason: str = "", **verdicts: str
) -> httpx.Response:
    sheet = reviewer.get(f"/console/reviews/{SLUG}")
    data = decision_form(sheet.text, **verdicts) | {"outcome": outcome, "reason": reason}
    return reviewer.post(f"/console/reviews/{SLUG}/decide", data=data, follow_redirects=False)


def decided_events(db: Database) -> list[SecurityEvent]:
    with db.session() as session:
        query = select(SecurityEvent).where(SecurityEvent.tag == "screening:review:decided")
        return list(session.scalars(query.order_by(SecurityEvent.id)))


def version_of(db: Database) -> versions.VersionView:
    with db.session() as session:
        return versions.version_view(session, find(session, SLUG))


def test_the_queue_lists_the_submitted_version_for_reviewers_only(
    client: TestClient, cw: ConsoleWorld
) -> None:
    reviewer = person(client, "reviewer1")
    queue = reviewer.get("/console/reviews")
    assert queue.status_code == 200
    (row,) = re.findall(r'<tr data-testid="review-row">(.*?)</tr>', queue.text, re.S)
    assert SLUG in row and "0 / 2" in row  # tier 3: two approvals needed, none yet
    assert person(client, "vendor-a-dev").get("/console/reviews").status_code == 403
    assert person(client, "owner0").get(f"/console/reviews/{SLUG}").status_code == 403
    anonymous = client.get("/console/reviews", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/console/login")


def test_the_sheet_shows_justifications_answers_and_evidence_with_its_hash(
    client: TestClient, cw: ConsoleWorld
) -> None:
    reviewer = person(client, "reviewer1")
    sheet = reviewer.get(f"/console/reviews/{SLUG}").text
    assert WHY in sheet and "customers.phone:raw" in sheet
    assert "our documented practice for assessment.last" in sheet
    digest = hashlib.sha256(PDF + b"pentest_report").hexdigest()
    assert digest in sheet
    links = re.findall(r'href="(/console/reviews/[^"]+/evidence/[^"]+)"', sheet)
    assert len(links) == 2
    downloads = [reviewer.get(link.replace("&amp;", "&")) for link in links]
    by_hash = {d.headers["x-evidence-sha256"]: d for d in downloads}
    assert by_hash[digest].content == PDF + b"pentest_report"
    assert hashlib.sha256(by_hash[digest].content).hexdigest() == digest
    assert "attachment" in by_hash[digest].headers["content-disposition"]
    assert reviewer.get(f"/console/reviews/{SLUG}/evidence/ev_nope").status_code == 404
    assert person(client, "vendor-b-dev").get(links[0].replace("&amp;", "&")).status_code == 403


def test_a_decision_without_the_form_token_is_refused_and_not_recorded(
    client: TestClient, cw: ConsoleWorld
) -> None:
    reviewer = person(client, "reviewer1")
    data = decision_form(reviewer.get(f"/console/reviews/{SLUG}").text) | {"outcome": "approve"}
    for token in ("", "forged"):
        refused = reviewer.post(f"/console/reviews/{SLUG}/decide", data=data | {"csrf_token": token})
        assert refused.status_code == 403
    assert decided_events(cw.db) == []
    assert version_of(cw.db).status == "submitted"


def test_weaker_mode_then_a_second_reviewer_signs_off_and_the_weaker_mode_is_stored(
    client: TestClient, cw: ConsoleWorld
) -> None:
    first = person(client, "reviewer1")
    done = decide(first, phone="weakened:masked")
    assert done.status_code == 303 and "done=1" in done.headers["location"]
    assert version_of(cw.db).status == "in_review"
    # The same person cannot sign twice; a reviewer working for the vendor cannot sign at all.
    again = decide(first)
    assert again.status_code == 403
    assert "2人目の審査担当者は別の人" in again.text
    own = decide(person(client, "vendor-a-reviewer"))
    assert own.status_code == 403 and "ベンダーに所属" in own.text
    assert [e.actor for e in decided_events(cw.db)] == ["reviewer1"]
    # The sign-off that would list the app waits for the vendor's erasure endpoint to pass the check.
    reviewer2 = person(client, "reviewer2")
    blocked = decide(reviewer2)
    assert blocked.status_code == 409 and "消去依頼の受信先" in blocked.text
    assert [e.actor for e in decided_events(cw.db)] == ["reviewer1"]
    check_endpoint_from_the_sheet(reviewer2, cw)
    second = decide(reviewer2)
    assert second.status_code == 303
    version = version_of(cw.db)
    assert version.status == "approved"
    assert set(version.approved_scopes or ()) == {
        "customers.name:raw",
        "customers.phone:masked",
        "customers.points:raw",
    }
    assert [e.actor for e in decided_events(cw.db)] == ["reviewer1", "reviewer2"]
    page = first.get(f"/console/reviews/{SLUG}?version=1").text
    assert "customers.phone:masked" in page and 'data-testid="decide-form"' not in page
    audits = first.get("/console/audits")
    assert audits.status_code == 200 and SLUG in audits.text


def test_a_weaker_mode_without_a_reason_shows_the_sheet_with_the_rule(
    client: TestClient, cw: ConsoleWorld
) -> None:
    reviewer = person(client, "reviewer1")
    data = decision_form(reviewer.get(f"/console/reviews/{SLUG}").text, phone="weakened:token")
    data = {k: ("" if k.startswith("reason_") else v) for k, v in data.items()} | {"outcome": "approve"}
    refused = reviewer.post(f"/console/reviews/{SLUG}/decide", data=data)
    assert refused.status_code == 422
    assert 'data-testid="error"' in refused.text and 'data-testid="decide-form"' in refused.text
    assert decided_events(cw.db) == []


def test_a_rejection_needs_a_reason_and_ends_the_version(client: TestClient, cw: ConsoleWorld) -> None:
    reviewer = person(client, "reviewer1")
    assert decide(reviewer, outcome="reject").status_code == 422
    assert version_of(cw.db).status == "submitted"
    assert decide(reviewer, outcome="reject", reason="no encryption at rest").status_code == 303
    assert version_of(cw.db).status == "rejected"
    (event,) = decided_events(cw.db)
    assert event.actor == "reviewer1" and event.data["outcome"] == "reject"
    assert SLUG not in reviewer.get("/console/reviews").text
