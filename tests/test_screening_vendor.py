"""The vendor API's edges: a scope increase is a new version and reaches a company only when it consents
again; every /vendor route answers bad input with a precise 4xx."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from appwarden.broker.auth import authenticate
from appwarden.db.session import Database
from appwarden.demo.oauth_client import connect_app
from conftest import OWNER_PASSWORD, World
from screening_helpers import PDF, WHY, approve, declare, new_vendor, prepare, staff

V1 = ["customers.name:masked", "customers.phone:masked"]
V2 = [*V1, "customers.email:masked"]


def scopes_of(db: Database, token: dict[str, Any]) -> set[str]:
    with db.session() as session:
        return set(authenticate(session, token["access_token"]).scopes)


def test_scope_increase_needs_review_and_each_companys_consent(
    client: TestClient, db: Database, world: World, admin_headers: dict[str, str]
) -> None:
    vendor = new_vendor(client, db)
    reg = prepare(vendor, "booking-pro", V1)
    alice = staff(db, "alice")
    assert approve(client, "booking-pro", alice, admin_headers).status_code == 200
    creds = {
        "client_id": reg["client_id"],
        "client_secret": reg["client_secret"],
        "redirect_uri": "https://booking-pro.example/cb",
    }
    old = connect_app(client, **creds, username="owner0", password=OWNER_PASSWORD, scope=" ".join(V1))
    assert scopes_of(db, old) == set(V1)

    assert vendor.post("/vendor/apps/booking-pro/versions").status_code == 201
    declare(vendor, "booking-pro", V2)
    assert (
        vendor.get("/vendor/apps/booking-pro").json()["app"]["listing_state"] == "listed"
    )  # still serving v1
    r = approve(client, "booking-pro", staff(db, "bob"), admin_headers, phone="token")
    assert r.status_code == 200 and r.json()["app"]["version"] == 2
    assert r.json()["app"]["approved_scopes"] == [
        "customers.name:masked",
        "customers.phone:token",
        "customers.email:masked",
    ]

    # owner0 has not consented to v2: exactly the old grant (phone still masked, no email).
    assert scopes_of(db, old) == set(V1)
    refreshed = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": old["refresh_token"],
            **{k: creds[k] for k in ("client_id", "client_secret")},
        },
    )
    assert refreshed.status_code == 200 and scopes_of(db, refreshed.json()) == set(V1)
    # owner1 consents to v2 and gets v2's approval.
    new = connect_app(
        client,
        **creds,
        username="owner1",
        password=OWNER_PASSWORD,
        scope="customers.name:masked customers.phone:token customers.email:masked",
    )
    assert scopes_of(db, new) == {"customers.name:masked", "customers.phone:token", "customers.email:masked"}


def test_vendor_routes_refuse_bad_input_precisely(client: TestClient, db: Database) -> None:
    vendor = new_vendor(client, db)
    other = new_vendor(client, db, "Other Vendor KK")
    prepare(vendor, "invoice-plus", ["customers.name:raw"], submit=False)

    def problem(response: Any, status: int, code: str) -> None:
        assert (response.status_code, response.json().get("code")) == (status, code), response.text

    problem(client.get("/vendor/apps"), 401, "invalid_vendor_key")
    problem(
        client.post("/vendor/apps", headers={"Authorization": "Bearer vk_wrong"}, json={}),
        401,
        "invalid_vendor_key",
    )
    problem(
        client.post("/vendor/apps", headers={"Authorization": "Bearer sk_x"}, content=b"x" * 10),
        401,
        "invalid_vendor_key",
    )
    for method, path in [
        ("get", "/vendor/apps/invoice-plus"),
        ("post", "/vendor/apps/invoice-plus/submit"),
        ("post", "/vendor/apps/invoice-plus/rotate-secret"),
    ]:
        problem(getattr(other, method)(path), 404, "app_not_found")
    problem(
        other.post("/vendor/evidence?app=invoice-plus&kind=other&filename=a.pdf", content=PDF),
        404,
        "app_not_found",
    )
    problem(
        vendor.post(
            "/vendor/apps", json={"slug": "invoice-plus", "name": "x", "redirect_uris": ["https://a.b/c"]}
        ),
        409,
        "app_exists",
    )
    problem(
        vendor.post(
            "/vendor/apps", json={"slug": "ok-app", "name": "x", "redirect_uris": ["http://evil.example/"]}
        ),
        422,
        "invalid_parameter",
    )
    problem(
        client.post(
            "/vendor/apps",
            content=b"{not json",
            headers={**vendor.headers, "content-type": "application/json"},
        ),
        422,
        "invalid_parameter",
    )
    problem(
        vendor.put(
            "/vendor/apps/invoice-plus/scopes",
            json={"scopes": [{"scope": "customers.salary:raw", "justification": WHY}]},
        ),
        422,
        "invalid_scope",
    )
    problem(
        vendor.put(
            "/vendor/apps/invoice-plus/scopes",
            json={"scopes": [{"scope": "customers.name:raw", "justification": "because"}]},
        ),
        422,
        "justification_required",
    )
    figures = {"average": 10, "peak": 5}
    problem(
        vendor.put(
            "/vendor/apps/invoice-plus/volume",
            json={"people_per_day": figures, "requests_per_minute": figures},
        ),
        422,
        "invalid_volume",
    )
    problem(
        vendor.put(
            "/vendor/apps/invoice-plus/retention", json={"fields": {"phone": {"days": 9, "purpose": "xxxxx"}}}
        ),
        422,
        "invalid_retention",
    )
    problem(
        vendor.put(
            "/vendor/apps/invoice-plus/questionnaire", json={"answers": {"nope": {"answer": "x" * 20}}}
        ),
        422,
        "unknown_question",
    )
    problem(
        vendor.put(
            "/vendor/apps/invoice-plus/questionnaire",
            json={"answers": {"assessment.last": {"answer": "x" * 20}}},
        ),
        422,
        "date_required",
    )
    problem(
        vendor.post(
            "/vendor/evidence?app=invoice-plus&kind=pentest_report&filename=a.exe",
            content=b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\xff\xff",
        ),
        415,
        "unsupported_media_type",
    )
    problem(
        vendor.post("/vendor/evidence?app=invoice-plus&kind=selfie&filename=a.pdf", content=PDF),
        422,
        "invalid_evidence_kind",
    )
    problem(
        vendor.post("/vendor/evidence?app=invoice-plus&kind=other&filename=a.pdf", content=b""),
        422,
        "empty_file",
    )
    big = PDF + b"0" * (10 * 1024 * 1024)
    problem(
        vendor.post("/vendor/evidence?app=invoice-plus&kind=other&filename=a.pdf", content=big),
        413,
        "payload_too_large",
    )
    # The same content twice is stored once, under its hash.
    first = vendor.post("/vendor/evidence?app=invoice-plus&kind=other&filename=a.pdf", content=PDF).json()
    second = vendor.post("/vendor/evidence?app=invoice-plus&kind=other&filename=b.pdf", content=PDF).json()
    assert first["sha256"] == second["sha256"] and first["media_type"] == "application/pdf"
    status = vendor.get("/vendor/apps/invoice-plus").json()
    assert status["app"]["tier"] == 3 and "evidence.security_policy" not in status["missing"]
    assert vendor.post("/vendor/apps/invoice-plus/submit").status_code == 200  # complete now
    problem(vendor.post("/vendor/apps/invoice-plus/submit"), 409, "version_frozen")
    problem(
        vendor.put("/vendor/apps/invoice-plus/redirect-uris", json={"redirect_uris": []}),
        422,
        "invalid_parameter",
    )
