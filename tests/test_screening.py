"""Screening end to end over the real app: a vendor registers and submits, reviewers decide, the app is
listed; lifecycle rules, tiers, the two-reviewer rule, weaker modes, test-company-only connections."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from appwarden.cli import run
from appwarden.config import get_settings
from appwarden.db.session import Database
from appwarden.errors import Conflict
from appwarden.events.models import SecurityEvent
from appwarden.marketplace.lifecycle import (
    TRANSITIONS,
    Access,
    access_in_state,
    check_transition,
    scopes_for_access,
)
from appwarden.marketplace.tiers import tier_of
from appwarden.marketplace.vocabulary import LifecycleState
from appwarden.platform import service as platform
from conftest import OWNER_PASSWORD
from screening_helpers import approve, new_vendor, pass_endpoint_check, prepare, staff

S = LifecycleState
ALL = list(S)


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("target", ALL)
def test_every_transition_and_its_guard(current: S, target: S) -> None:
    allowed = target in TRANSITIONS[current] or target == S.DELISTED
    if allowed:
        check_transition(current, target)
    else:
        with pytest.raises(Conflict) as refused:
            check_transition(current, target)
        assert refused.value.code == "invalid_transition"
    # The documented paths only: restricted comes back to listed; nothing leaves delisted.
    assert (S.RESTRICTED, S.LISTED) in {(c, t) for c in S for t in TRANSITIONS[c]}
    assert TRANSITIONS[S.DELISTED] == frozenset()


@pytest.mark.parametrize(
    ("scopes", "tier"),
    [
        ([], 0),
        (["products:read", "stores:read"], 0),
        (["customers.points:raw", "customers.rank:raw", "customers.gender:raw"], 1),
        (["customers.name:masked", "customers.points:raw"], 2),
        (["customers.phone:token", "customers.email:masked"], 2),
        (["customers.birthday:raw"], 3),
        (["customers.points:raw", "customers.name:token", "customers.address:raw"], 3),
    ],
)
def test_tier_is_computed_from_the_scopes_with_reasons(scopes: list[str], tier: int) -> None:
    computed = tier_of(scopes)
    assert computed.tier == tier
    if tier == 3:
        assert all("raw identifying" in r for r in computed.reasons)
    assert computed.reasons


def test_restricted_policy_drops_raw_pii_to_tokens_or_pauses() -> None:
    scopes = ["customers.name:raw", "customers.phone:masked", "customers.points:raw", "transactions:read"]
    access = access_in_state("restricted", "token", test_company=False)
    assert access == Access.TOKEN_ONLY
    assert scopes_for_access(scopes, access, "token") == [
        "customers.name:token",
        "customers.phone:masked",
        "customers.points:raw",
        "transactions:read",
    ]
    assert access_in_state("restricted", "pause", test_company=False) == Access.REFUSED
    assert access_in_state("in_review", "token", test_company=True) == Access.FULL
    assert access_in_state("in_review", "token", test_company=False) == Access.REFUSED
    assert access_in_state("bogus", "token", test_company=True) == Access.REFUSED


def events(db: Database, tag: str) -> list[SecurityEvent]:
    with db.session() as session:
        return list(session.query(SecurityEvent).filter_by(tag=tag).order_by(SecurityEvent.id))


def test_tier3_needs_two_different_reviewers_neither_the_vendors(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    vendor = new_vendor(client, db)
    prepare(vendor, "invoice-plus", ["customers.name:raw", "customers.phone:raw", "transactions:read"])
    status = vendor.get("/vendor/apps/invoice-plus").json()
    assert (status["app"]["listing_state"], status["app"]["tier"]) == ("submitted", 3)
    assert status["app"]["tier_reasons"] == [
        "customers.name:raw: raw identifying field",
        "customers.phone:raw: raw identifying field",
    ]
    alice, bob = staff(db, "alice"), staff(db, "bob")
    insider = staff(db, "mallory", vendor_affiliation=vendor.vendor_id)

    refused = approve(client, "invoice-plus", insider, admin_headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "reviewer_is_vendor")
    admin_key = client.post("/admin/reviews/invoice-plus/approve", headers=admin_headers, json={})
    assert (admin_key.status_code, admin_key.json()["code"]) == (401, "invalid_reviewer_key")

    first = approve(client, "invoice-plus", alice, admin_headers, phone="masked")
    assert first.status_code == 200, first.text
    assert (first.json()["app"]["listing_state"], first.json()["version"]["status"]) == (
        "in_review",
        "in_review",
    )
    again = approve(client, "invoice-plus", alice, admin_headers)
    assert (again.status_code, again.json()["code"]) == (403, "same_reviewer")

    second = approve(client, "invoice-plus", bob, admin_headers)
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["app"]["listing_state"] == "listed" and body["app"]["reviewed"] is True
    # The weaker of the two decisions wins: alice allowed the phone only masked.
    assert body["version"]["approved_scopes"] == [
        "customers.name:raw",
        "customers.phone:masked",
        "transactions:read",
    ]
    assert body["app"]["approved_scopes"] == body["version"]["approved_scopes"]
    # Every move is a security event with who, when and why.
    moves = [
        (e.data["previous"], e.data["state"], e.actor)
        for e in events(db, "app:listing:in-review")
        + events(db, "app:listing:listed")
        + events(db, "app:listing:submitted")
    ]
    assert ("submitted", "in_review", "alice") in moves and ("in_review", "listed", "bob") in moves
    assert all("at" in e.data and "reason" in e.data for e in events(db, "app:listing:listed"))
    # Decisions are frozen: nothing more can be decided on this version.
    late = approve(client, "invoice-plus", staff(db, "carol"), admin_headers)
    assert late.status_code in (404, 409)


def test_weakening_must_be_weaker_and_have_a_reason(
    client: TestClient, db: Database, admin_headers: dict[str, str]
) -> None:
    vendor = new_vendor(client, db)
    prepare(vendor, "booking-go", ["customers.name:masked", "customers.email:masked"])
    key = {"Authorization": f"Bearer {staff(db, 'alice')}"}
    sheet = client.get("/admin/reviews/booking-go", headers=admin_headers).json()
    answers = [{"question": q["question"], "ok": True} for q in sheet["questionnaire"]]
    stronger = [
        {"scope": "customers.name:masked", "verdict": "weakened", "mode": "raw", "reason": "x"},
        {"scope": "customers.email:masked", "verdict": "approved"},
    ]
    r = client.post(
        "/admin/reviews/booking-go/approve", headers=key, json={"scopes": stronger, "answers": answers}
    )
    assert (r.status_code, r.json()["code"]) == (422, "not_weaker")
    no_reason = [
        {"scope": "customers.name:masked", "verdict": "weakened", "mode": "token"},
        {"scope": "customers.email:masked", "verdict": "approved"},
    ]
    r = client.post(
        "/admin/reviews/booking-go/approve", headers=key, json={"scopes": no_reason, "answers": answers}
    )
    assert (r.status_code, r.json()["code"]) == (422, "reason_required")
    partial = client.post(
        "/admin/reviews/booking-go/approve", headers=key, json={"scopes": no_reason[1:], "answers": answers}
    )
    assert (partial.status_code, partial.json()["code"]) == (422, "checklist_incomplete")
    bad_answer = [dict(a, ok=False) if i == 0 else a for i, a in enumerate(answers)]
    r = client.post(
        "/admin/reviews/booking-go/approve",
        headers=key,
        json={
            "scopes": [no_reason[1], {"scope": "customers.name:masked", "verdict": "approved"}],
            "answers": bad_answer,
        },
    )
    assert (r.status_code, r.json()["code"]) == (422, "answers_not_accepted")
    # Tier 2: one reviewer lists it, with name weakened to token.
    r = approve(client, "booking-go", key["Authorization"][7:], admin_headers, name="token")
    assert r.status_code == 200 and r.json()["app"]["listing_state"] == "listed"
    assert r.json()["app"]["approved_scopes"] == ["customers.name:token", "customers.email:masked"]
    assert (
        vendor.get("/vendor/apps/booking-go").json()["review"]["decisions"][0]["scopes"][0]["verdict"]
        == "weakened"
    )


def test_reject_returns_the_app_to_draft_and_a_new_version_starts(
    client: TestClient, db: Database, admin_headers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    vendor = new_vendor(client, db)
    prepare(vendor, "stamp-card", ["customers.points:raw", "customers.rank:raw"])
    staff(db, "alice")
    capsys.readouterr()
    assert run(["review", "queue", "--json"]) == 0
    assert [r["app"] for r in json.loads(capsys.readouterr().out)] == ["stamp-card"]
    assert (
        run(
            [
                "review",
                "reject",
                "stamp-card",
                "--reviewer",
                "alice",
                "--reason",
                "retention too long",
                "--not-ok",
                "retention.deletion",
                "--json",
            ]
        )
        == 0
    )
    sheet = json.loads(capsys.readouterr().out)
    assert (sheet["version"]["status"], sheet["app"]["listing_state"]) == ("rejected", "draft")
    assert vendor.put("/vendor/apps/stamp-card/volume", json={}).status_code == 422
    frozen = vendor.put(
        "/vendor/apps/stamp-card/scopes",
        json={"scopes": [{"scope": "customers.points:raw", "justification": "x" * 30}]},
    )
    assert (frozen.status_code, frozen.json()["code"]) == (409, "version_frozen")
    assert vendor.post("/vendor/apps/stamp-card/versions").json()["version"] == 2
    assert vendor.post("/vendor/apps/stamp-card/submit").status_code == 200  # the copy is complete
    pass_endpoint_check(client, "stamp-card", admin_headers)
    assert run(["review", "approve", "stamp-card", "--reviewer", "alice", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["app"]["listing_state"] == "listed"


def test_unlisted_app_connects_only_to_test_companies(
    client: TestClient, db: Database, world: Any, admin_headers: dict[str, str]
) -> None:
    from test_oauth import login

    vendor = new_vendor(client, db)
    reg = prepare(vendor, "sandbox-app", ["customers.name:masked"])
    query = {
        "response_type": "code",
        "client_id": reg["client_id"],
        "redirect_uri": "https://sandbox-app.example/cb",
        "state": "s",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    login(client, "owner0")
    refused = client.get("/oauth/authorize", params=query, follow_redirects=False)
    assert refused.status_code == 403 and "app_not_listed" in refused.text
    with db.session() as session:
        test_co = platform.create_company(session, "Sandbox KK", "qa@sandbox.example", is_test=True)
        platform.create_user(session, "tester", OWNER_PASSWORD, role="company_owner", company=test_co)
    client.cookies.clear()
    login(client, "tester")
    consent = client.get("/oauth/authorize", params=query, follow_redirects=False)
    assert consent.status_code == 200 and "Sandbox KK" in consent.text


def test_unlisted_app_reads_its_requested_scopes_from_a_test_company_only(
    client: TestClient, db: Database, world: Any, admin_headers: dict[str, str]
) -> None:
    from appwarden.demo.oauth_client import connect_app

    vendor = new_vendor(client, db)
    reg = prepare(vendor, "sandbox-app", ["customers.name:masked", "customers.points:raw"])
    with db.session() as session:
        test_co = platform.create_company(session, "Sandbox KK", "qa@sandbox.example", is_test=True)
        store = platform.create_store(session, test_co, "Sandbox store")
        platform.add_customers(
            session,
            test_co,
            [{"name": f"試験 太郎{i}", "points": i, "home_store_id": store.id} for i in range(3)],
        )
        platform.create_user(session, "tester", OWNER_PASSWORD, role="company_owner", company=test_co)
    creds = {
        "client_id": reg["client_id"],
        "client_secret": reg["client_secret"],
        "redirect_uri": "https://sandbox-app.example/cb",
    }
    # The version in screening asked for masked names and points: that is what the test company grants.
    token = connect_app(
        client,
        **creds,
        username="tester",
        password=OWNER_PASSWORD,
        scope="customers.name:masked customers.points:raw",
    )
    assert set(token["scope"].split()) == {"customers.name:masked", "customers.points:raw"}
    page = client.get("/v1/customers", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert page.status_code == 200, page.text
    rows = page.json()["data"]
    # The three test customers, and the connection's own canaries (indistinguishable, by design).
    assert len(rows) == 3 + get_settings().canaries_per_connection
    assert all("points" in r and not str(r["name"]).startswith("試験 太郎") for r in rows)
    assert {0, 1, 2} <= {r["points"] for r in rows}
    # Nothing beyond the request, even for a test company.
    beyond = client.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": reg["client_id"],
            "redirect_uri": "https://sandbox-app.example/cb",
            "scope": "customers.phone:raw",
            "state": "s",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
        follow_redirects=False,
    )
    assert beyond.status_code in (302, 303) and "invalid_scope" in beyond.headers["location"]

    # Once approved and listed, the test company's connection is that version's, reviewed grant.
    decided = approve(client, "sandbox-app", staff(db, "alice"), admin_headers)
    assert decided.status_code == 200 and decided.json()["app"]["listing_state"] == "listed", decided.text
    again = client.get("/v1/customers", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert again.status_code == 200 and len(again.json()["data"]) == len(rows)
