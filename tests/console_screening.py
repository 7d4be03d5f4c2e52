"""Screening fixtures for the console's reviewer and vendor tests: more reviewers (one of them Vendor
A's own person) and a tier-3 app of Vendor A taken to submission through the owner packages' functions."""

from __future__ import annotations

from pathlib import Path

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.marketplace import vendor_pages
from appwarden.marketplace.vendors import get_vendor
from appwarden.platform.accounts import set_password
from appwarden.platform.staff import create_staff
from appwarden.screening import console_pages
from appwarden.screening.questionnaire import QUESTIONS
from console_world import PASSWORD

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
WHY = "we print the customer name and phone on the invoice we send"
SLUG = "vendor-a-crm"
SCOPES = ["customers.name:raw", "customers.phone:raw", "customers.points:raw"]


def add_reviewers(db: Database) -> None:
    """``reviewer2`` and ``vendor-a-reviewer`` (a reviewer who works for Vendor A), password PASSWORD."""
    with db.session() as session:
        vendor_a = get_vendor(session, "Vendor A").public_id
        for username, affiliation in (("reviewer2", None), ("vendor-a-reviewer", vendor_a)):
            create_staff(session, username, role="reviewer", vendor_affiliation=affiliation)
            set_password(session, username, PASSWORD)


def answers() -> dict[str, dict[str, object]]:
    return {
        q.key: {
            "answer": f"our documented practice for {q.key}",
            "date": utcnow().date() if q.dated else None,
        }
        for q in QUESTIONS
    }


def submitted_app(db: Database, data_dir: Path, *, slug: str = SLUG, scopes: list[str] = SCOPES) -> str:
    """Vendor A's app ``slug`` asking for ``scopes`` (tier 3 by default), complete and submitted."""
    actor = "vendor-a-dev"
    with db.session() as session:
        vendor = get_vendor(session, "Vendor A").public_id
        vendor_pages.register(
            session,
            vendor,
            slug=slug,
            name="Vendor A CRM",
            redirect_uris=[f"https://{slug}.example/cb"],
            actor=actor,
        )
        vendor_pages.request_scopes(
            session, vendor, slug, [{"scope": s, "justification": WHY} for s in scopes], actor=actor
        )
        figures = {"average": 100, "peak": 400}
        vendor_pages.declare_volume(
            session, vendor, slug, {"people_per_day": figures, "requests_per_minute": figures}, actor=actor
        )
        fields = [s.split(".")[1].split(":")[0] for s in scopes if s.startswith("customers.")]
        vendor_pages.declare_retention(
            session, vendor, slug, {f: {"days": 90, "purpose": "invoicing"} for f in fields}, actor=actor
        )
        profile = vendor_pages.vendor_profile(session, vendor)
        console_pages.answer(session, profile, slug, answers(), actor=actor, now=utcnow())
        for kind in ("security_policy", "pentest_report"):
            console_pages.attach(
                session,
                profile,
                slug,
                kind=kind,
                filename=f"{kind}.pdf",
                content=PDF + kind.encode(),
                data_dir=data_dir,
                max_bytes=1 << 20,
                actor=actor,
            )
        console_pages.submit(session, profile, slug, actor=actor, now=utcnow())
    return slug
