"""A vendor taking an app through screening over the real HTTP API, and staff reviewing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.demo.vendor_receiver import start
from appwarden.marketplace.vendors import create_vendor
from appwarden.obligations.erasure import set_endpoint
from appwarden.platform.staff import create_staff
from appwarden.screening.questionnaire import QUESTIONS

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
WHY = "needed to print the customer's name on the invoice we send"


@dataclass
class VendorClient:
    """A vendor calling ``/vendor`` with its own key."""

    http: TestClient
    key: str
    vendor_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def post(self, path: str, **kw: Any) -> Any:
        return self.http.post(path, headers=self.headers, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.http.put(path, headers=self.headers, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.http.get(path, headers=self.headers, **kw)


def new_vendor(client: TestClient, db: Database, name: str = "Invoice Vendor KK") -> VendorClient:
    with db.session() as session:
        account = create_vendor(
            session, name, email=f"security@{name.split()[0].lower()}.example", password="vendor-password-1"
        )
        return VendorClient(client, account.api_key, account.vendor.public_id)


def staff(db: Database, username: str, **kw: Any) -> str:
    with db.session() as session:
        return create_staff(session, username, role=kw.pop("role", "reviewer"), **kw)[1]


def all_answers() -> dict[str, dict[str, str]]:
    return {
        q.key: {
            "answer": f"our documented practice for {q.key}",
            **({"date": "2026-01-10"} if q.dated else {}),
        }
        for q in QUESTIONS
    }


def prepare(vendor: VendorClient, slug: str, scopes: list[str], *, submit: bool = True) -> dict[str, Any]:
    """Register ``slug`` and declare everything its tier needs; submit it. Returns the registration."""
    reg = vendor.post(
        "/vendor/apps",
        json={"slug": slug, "name": slug.title(), "redirect_uris": [f"https://{slug}.example/cb"]},
    )
    assert reg.status_code == 201, reg.text
    declare(vendor, slug, scopes, submit=submit)
    return dict(reg.json())


def declare(vendor: VendorClient, slug: str, scopes: list[str], *, submit: bool = True) -> None:
    ok = vendor.put(
        f"/vendor/apps/{slug}/scopes", json={"scopes": [{"scope": s, "justification": WHY} for s in scopes]}
    )
    assert ok.status_code == 200, ok.text
    figures = {"average": 100, "peak": 400}
    assert (
        vendor.put(
            f"/vendor/apps/{slug}/volume", json={"people_per_day": figures, "requests_per_minute": figures}
        ).status_code
        == 200
    )
    fields = [s.split(".")[1].split(":")[0] for s in scopes if s.startswith("customers.")]
    if fields:
        retention = {f: {"days": 90, "purpose": "invoicing"} for f in fields}
        assert vendor.put(f"/vendor/apps/{slug}/retention", json={"fields": retention}).status_code == 200
    tier = vendor.get(f"/vendor/apps/{slug}").json()["version"]["tier"]
    if tier:
        assert (
            vendor.put(f"/vendor/apps/{slug}/questionnaire", json={"answers": all_answers()}).status_code
            == 200
        )
    for kind in ("security_policy", "pentest_report")[: max(0, tier - 1)]:
        attached = vendor.post(f"/vendor/evidence?app={slug}&kind={kind}&filename={kind}.pdf", content=PDF)
        assert attached.status_code == 201, attached.text
    if submit:
        done = vendor.post(f"/vendor/apps/{slug}/submit")
        assert done.status_code == 200, done.text


def checklist(sheet: dict[str, Any], **weaken: str) -> dict[str, Any]:
    """Every requested scope approved (or weakened per ``weaken``: field → mode), every answer accepted."""
    scopes = []
    for item in sheet["version"]["requested"]:
        field = item["scope"].split(".")[1].split(":")[0] if item["scope"].startswith("customers.") else ""
        if field in weaken:
            scopes.append(
                {
                    "scope": item["scope"],
                    "verdict": "weakened",
                    "mode": weaken[field],
                    "reason": "masked digits are enough to identify the invoice",
                }
            )
        else:
            scopes.append({"scope": item["scope"], "verdict": "approved"})
    answers = [{"question": q["question"], "ok": True} for q in sheet["questionnaire"]]
    return {"scopes": scopes, "answers": answers, "reason": "checked"}


def approve(
    client: TestClient, slug: str, reviewer_key: str, admin_headers: dict[str, str], **weaken: str
) -> Any:
    sheet = client.get(f"/admin/reviews/{slug}", headers=admin_headers).json()
    pass_endpoint_check(client, slug, admin_headers)
    return client.post(
        f"/admin/reviews/{slug}/approve",
        headers={"Authorization": f"Bearer {reviewer_key}"},
        json=checklist(sheet, **weaken),
    )


def pass_endpoint_check(client: TestClient, slug: str, admin_headers: dict[str, str]) -> dict[str, Any]:
    """Give ``slug`` an erasure endpoint that answers as a vendor must (a real receiver verifying the
    signature), and have the review's check pass, so the last approval may list the app."""
    settings, db = client.app.state.settings, client.app.state.db  # type: ignore[attr-defined]
    secrets: dict[str, str] = {}
    url, stop = start(secrets)
    try:
        with db.session() as session:
            _, secrets[slug] = set_endpoint(
                session, settings, slug, f"{url}/{slug}", actor="test", now=utcnow()
            )
        answer = client.post(f"/admin/apps/{slug}/erasure-endpoint/check", headers=admin_headers)
    finally:
        stop()
    assert answer.status_code == 200 and answer.json()["passed"], answer.text
    return dict(answer.json())
