"""The demo's marketplace arrives as a screened one does: each vendor registers its app through the real
``/vendor`` API, declares scopes (with why), volume, retention, the questionnaire and evidence, and
submits; reviewers decide through ``/admin/reviews`` (two different people for a tier-3 app).

A few more apps stop along the way so that every lifecycle state is on show: one still a draft, one
submitted, one in review (one of its two reviewers has approved), one delisted by its vendor's request.
After the traffic, one listed app's audit lapses (it becomes restricted) — see :func:`lapse_one_audit`.
``invoice-plus`` is the exception: it was listed before screening existed (grandfathered, its first
audit due at once), which is how the incident of January 2026 could happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.demo.catalog import AppSpec
from appwarden.demo.traffic import Credentials, DemoError
from appwarden.demo.vendor_receiver import start as start_receiver
from appwarden.marketplace import service as marketplace
from appwarden.marketplace import standing
from appwarden.marketplace.scopes import FieldScope, parse_scope
from appwarden.marketplace.tiers import tier_of
from appwarden.marketplace.vendors import create_vendor
from appwarden.marketplace.vocabulary import LifecycleState
from appwarden.platform.staff import create_staff
from appwarden.screening import audits
from appwarden.screening.questionnaire import QUESTIONS

REVIEWERS = ("reviewer-sato", "reviewer-tanaka")
# Evidence files are judged by content: a minimal PDF is a PDF.
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
# The demo's syncs read whole member lists at once, so their vendors declare full-sync volumes (the
# monitor's quotas follow the declared peak) and say so (``full_sync``: reviewers approve it, and the
# mirror detector then leaves the approved version alone).
VOLUME: dict[str, Any] = {
    "people_per_day": {"average": 50_000, "peak": 500_000},
    "requests_per_minute": {"average": 600, "peak": 60_000},
    "full_sync": True,
}
# What an invoicing app declares (the guarded replay's invoice-plus): it bills a company's business
# customers, a few hundred a day, a couple of thousand on a month-end run; it never reads whole lists.
INVOICING_VOLUME: dict[str, Any] = {
    "people_per_day": {"average": 200, "peak": 2_000},
    "requests_per_minute": {"average": 5, "peak": 60},
}
PURPOSES = {
    "name": "the addressee shown on what the store sends its member",
    "name_kana": "sorting members by reading, as the store's staff look them up",
    "phone": "calling the member back about their order or booking",
    "email": "sending the member the coupon or receipt they asked for",
    "address": "delivering the member's order to their door",
    "birthday": "the birthday coupon the member signed up for",
    "gender": "aggregate sales reports by segment, never per person",
    "points": "showing the member their point balance",
    "rank": "applying the member's rank discount",
}


@dataclass(frozen=True, slots=True)
class Extra:
    """An app that stops short of listing (or is delisted), so every lifecycle state appears."""

    slug: str
    name: str
    vendor: str
    scopes: tuple[str, ...]
    state: LifecycleState


EXTRAS: tuple[Extra, ...] = (
    Extra(
        "table-order",
        "Table Order (テーブルオーダー)",
        "Table Order K.K.",
        ("customers.points:raw",),
        LifecycleState.DRAFT,
    ),
    Extra(
        "queue-line",
        "Queue Line (順番待ち)",
        "Queue Line Inc.",
        ("customers.name:masked",),
        LifecycleState.SUBMITTED,
    ),
    Extra(
        "stock-sync",
        "Stock Sync (在庫連携)",
        "Stock Sync K.K.",
        ("customers.name:raw",),
        LifecycleState.IN_REVIEW,
    ),
    Extra(
        "old-coupon",
        "Old Coupon (旧クーポン)",
        "Old Coupon K.K.",
        ("customers.email:token",),
        LifecycleState.DELISTED,
    ),
)


def _justification(scope: str) -> str:
    parsed = parse_scope(scope)
    if isinstance(parsed, FieldScope):
        return f"{PURPOSES[parsed.field]} ({parsed.mode.value})"
    return "reading the sales, stores or products the integration needs"


class Screening:
    """Vendors and reviewers of the demo, calling the live server as outside clients do."""

    def __init__(self, base_url: str, db: Database, settings: Settings) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30.0)
        self.db = db
        self.admin_key = settings.admin_key
        self.admin = {"Authorization": f"Bearer {settings.admin_key}"}
        self.vendor_keys: dict[str, str] = {}
        with db.session() as session:
            self.reviewer_keys = [create_staff(session, name, role="reviewer")[1] for name in REVIEWERS]
        # The vendors' erasure endpoints: one real receiver that verifies each app's signature.
        self.endpoint_secrets: dict[str, str] = {}
        self.endpoints_url, self._stop_endpoints = start_receiver(self.endpoint_secrets)

    def close(self) -> None:
        self.http.close()
        self._stop_endpoints()

    def _call(self, method: str, path: str, key: str, **kw: Any) -> dict[str, Any]:
        response = self.http.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kw)
        if response.status_code >= 400:
            raise DemoError(
                f"demo screening: {method} {path} answered {response.status_code}: {response.text}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    def _vendor_key(self, vendor: str) -> str:
        if vendor not in self.vendor_keys:
            domain = vendor.split()[0].lower().strip(".,")
            with self.db.session() as session:
                account = create_vendor(
                    session, vendor, email=f"security@{domain}.example", password=f"demo-{domain}-password"
                )
            self.vendor_keys[vendor] = account.api_key
        return self.vendor_keys[vendor]

    def apply(
        self,
        slug: str,
        name: str,
        vendor: str,
        scopes: tuple[str, ...],
        *,
        submit: bool,
        volume: dict[str, Any] | None = None,
    ) -> Credentials:
        """Register ``slug`` through ``/vendor`` and declare everything its tier asks for."""
        key = self._vendor_key(vendor)
        reg = self._call(
            "POST",
            "/vendor/apps",
            key,
            json={"slug": slug, "name": name, "redirect_uris": [f"https://{slug}.example/oauth/callback"]},
        )
        requested = [{"scope": s, "justification": _justification(s)} for s in scopes]
        self._call("PUT", f"/vendor/apps/{slug}/scopes", key, json={"scopes": requested})
        self._call("PUT", f"/vendor/apps/{slug}/volume", key, json=volume or VOLUME)
        endpoint = {"url": f"{self.endpoints_url}/{slug}"}
        put = self._call("PUT", f"/vendor/apps/{slug}/erasure-endpoint", key, json=endpoint)
        self.endpoint_secrets[slug] = str(put["secret"])
        fields = [p.field for p in map(parse_scope, scopes) if isinstance(p, FieldScope)]
        if fields:
            retention = {f: {"days": 90, "purpose": "kept while the member's order is open"} for f in fields}
            self._call("PUT", f"/vendor/apps/{slug}/retention", key, json={"fields": retention})
        tier = tier_of(scopes).tier
        if tier:
            answers = {
                q.key: {
                    "answer": f"documented and audited yearly ({q.key})",
                    **({"date": "2026-06-30"} if q.dated else {}),
                }
                for q in QUESTIONS
            }
            self._call("PUT", f"/vendor/apps/{slug}/questionnaire", key, json={"answers": answers})
        for kind in ("security_policy", "pentest_report")[: max(0, tier - 1)]:
            self._call(
                "POST", f"/vendor/evidence?app={slug}&kind={kind}&filename={kind}.pdf", key, content=PDF
            )
        if submit:
            self._call("POST", f"/vendor/apps/{slug}/submit", key)
        return Credentials(str(reg["client_id"]), str(reg["client_secret"]))

    def review(self, slug: str, *, reviewers: int) -> None:
        """``reviewers`` reviewers approve the checklist as asked (tier 3 needs two to list the app), once
        the review's check of the vendor's erasure endpoint has passed."""
        check = self._call("POST", f"/admin/apps/{slug}/erasure-endpoint/check", self.admin_key)
        if not check["passed"]:
            raise DemoError(f"demo screening: {slug}'s erasure endpoint failed its check: {check['reason']}")
        for key in self.reviewer_keys[:reviewers]:
            sheet = self.http.get(f"/admin/reviews/{slug}", headers=self.admin).json()
            checklist = {
                "scopes": [
                    {"scope": r["scope"], "verdict": "approved"} for r in sheet["version"]["requested"]
                ],
                "answers": [{"question": q["question"], "ok": True} for q in sheet["questionnaire"]],
                "reason": "declarations match the app's function; evidence checked",
            }
            self._call("POST", f"/admin/reviews/{slug}/approve", key, json=checklist)

    def list_app(self, spec: AppSpec, *, volume: dict[str, Any] | None = None) -> Credentials:
        """A catalogue app, from application to listing (declaring ``volume``, default ``VOLUME``)."""
        credentials = self.apply(spec.slug, spec.name, spec.vendor, spec.scopes, submit=True, volume=volume)
        self.review(spec.slug, reviewers=2 if tier_of(spec.scopes).tier == 3 else 1)
        return credentials

    def stop_short(self, extra: Extra) -> None:
        """An app that ends in ``extra.state`` (never listed, or listed then delisted)."""
        self.apply(
            extra.slug, extra.name, extra.vendor, extra.scopes, submit=extra.state != LifecycleState.DRAFT
        )
        if extra.state == LifecycleState.IN_REVIEW:
            self.review(extra.slug, reviewers=1)
        elif extra.state == LifecycleState.DELISTED:
            self.review(extra.slug, reviewers=2 if tier_of(extra.scopes).tier == 3 else 1)
            with self.db.session() as session:
                marketplace.transition(
                    session,
                    marketplace.get_app(session, extra.slug),
                    LifecycleState.DELISTED,
                    actor="security-team",
                    reason="the vendor closed the service",
                )


def lapse_one_audit(db: Database, settings: Settings, slug: str, *, now: datetime) -> list[str]:
    """The app's audit was due yesterday and nobody passed it: the periodic check restricts it (and tells
    its companies when mail is configured). Returns the apps the check restricted."""
    with db.session() as session:
        audits.schedule(session, standing.find(session, slug), now - timedelta(days=1), actor="demo", now=now)
    return list(audits.run(db, settings, now=now).restricted)


def marketplace_states(db: Database, *, now: datetime) -> list[dict[str, Any]]:
    """Every app's lifecycle state, tier, whether it was screened, and its audit (for the summary)."""
    with db.session() as session:
        due = {row["app"]: row for row in audits.due(session, now)}
        return [
            {
                "slug": app.slug,
                "state": app.listing_state,
                "tier": marketplace.tier_in_force(session, app)["tier"],
                "grandfathered": bool(app.grandfathered),
                "audit_due_at": due.get(app.slug, {}).get("due_at"),
                "audit_overdue": bool(due.get(app.slug, {}).get("overdue", False)),
            }
            for app in marketplace.list_apps(session)
        ]
