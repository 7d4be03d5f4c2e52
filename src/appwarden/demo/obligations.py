"""The demo's weeks after the traffic: three disconnections and what each vendor then did (issue 14).

On the demo's own calendar, from the end of the traffic (``t0``):

- ``t0``: one company's owner disconnects three apps;
- ``t0 + 48 h``: the erasure worker owes each vendor a ``company.redact`` and delivers it, signed, to the
  vendors' receiver the demo runs (a real local HTTP server that checks the signature);
- ``t0 + 3 d``: ``booking-go``'s and ``point-hub``'s vendors attest the erasure; ``loyalty-stamp``'s
  never does;
- ``t0 + 9 d``: mail reaches a canary of the connection ``point-hub`` attested erased, through the real
  canary SMTP receiver: ``erasure_contradicted``;
- ``t0 + 48 h + 31 d``: the background run finds ``loyalty-stamp``'s attestation overdue
  (``attestation_overdue``); past the grace period it would be restricted.

Every step goes through the services and receivers production uses, only the clock is the demo's.
"""

from __future__ import annotations

import smtplib
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy.orm import Session

from appwarden.canary.listen import build_controller
from appwarden.canary.service import list_canaries
from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.demo.catalog import Plan
from appwarden.demo.summary import alerts_by_app
from appwarden.demo.vendor_receiver import Received, start
from appwarden.marketplace import standing
from appwarden.monitor.runtime import Monitor
from appwarden.oauth.connections import company_connections, disconnect
from appwarden.obligations.attestation import AttestationView, attest, attestations
from appwarden.obligations.erasure import (
    ErasureView,
    list_requests,
    schedule_company_redacts,
    set_endpoint,
)
from appwarden.obligations.erasure_delivery import deliver_due

ATTESTS, OVERDUE, CONTRADICTED = "booking-go", "loyalty-stamp", "point-hub"
STORY_APPS = (ATTESTS, OVERDUE, CONTRADICTED)
OBLIGATION_DETECTORS = ("erasure_contradicted", "attestation_overdue")


@dataclass(frozen=True, slots=True)
class Calendar:
    """The demo's dates for the weeks after its traffic."""

    disconnected: datetime
    delivered: datetime
    attested: datetime
    canary_mailed: datetime
    checked: datetime

    @classmethod
    def after(cls, t0: datetime, settings: Settings) -> Calendar:
        delivered = t0 + timedelta(hours=settings.erasure_company_redact_delay_hours, minutes=1)
        return cls(
            disconnected=t0,
            delivered=delivered,
            attested=t0 + timedelta(days=3),
            canary_mailed=t0 + timedelta(days=9),
            checked=delivered + timedelta(days=settings.attestation_deadline_days + 1),
        )


def story_connections(plan: Plan) -> dict[str, int]:
    """Which company (its index in the plan) disconnects each story app: one company connected to all
    three when there is one, else each app's first company."""
    for company in sorted({c.company for c in plan.connections}):
        if all(company in plan.connected(slug) for slug in STORY_APPS):
            return dict.fromkeys(STORY_APPS, company)
    return {slug: plan.connected(slug)[0] for slug in STORY_APPS if plan.connected(slug)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _disconnect(session: Session, company_id: int, slug: str, owner: str, at: datetime) -> str | None:
    """The owner's disconnect of the company's live connection to ``slug``; its public id."""
    for view in company_connections(session, company_id):
        if view.app_slug == slug and view.status != "revoked":
            return disconnect(session, company_id, view.public_id, actor=owner, now=at).connection
    return None


def _mail_canary(db: Database, settings: Settings, address: str, at: datetime) -> None:
    """Send one marketing mail to ``address`` through the real canary SMTP receiver, stamped ``at``."""
    port = _free_port()
    controller = build_controller(db, settings, host="127.0.0.1", port=port, clock=lambda: at)
    controller.start()
    try:
        message = EmailMessage()
        message["From"] = "campaign@mailer.example"
        message["To"] = address
        message["Subject"] = "【期間限定】会員様だけの特別クーポン"
        message.set_content("いつもご利用ありがとうございます。今だけ使えるクーポンをお届けします。")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)
    finally:
        controller.stop()


def run_story(
    db: Database,
    settings: Settings,
    monitor: Monitor,
    plan: Plan,
    company_ids: list[int],
    owners: list[str],
    *,
    t0: datetime,
) -> dict[str, Any]:
    """The weeks after the traffic (see the module's text); what happened, for the demo's summary."""
    when = Calendar.after(t0, settings)
    secrets: dict[str, str] = {}
    received: list[Received] = []
    url, stop = start(secrets, clock=when.delivered.timestamp, received=received)
    try:
        picks = story_connections(plan)
        disconnected: dict[str, str] = {}
        with db.session() as session:
            for slug, company in picks.items():
                _, secrets[slug] = set_endpoint(
                    session, settings, slug, f"{url}/{slug}", actor="demo", now=t0
                )
                connection = _disconnect(
                    session, company_ids[company], slug, owners[company], when.disconnected
                )
                if connection is not None:
                    disconnected[slug] = connection
        with db.session() as session:
            schedule_company_redacts(session, settings, when.delivered)
        with httpx.Client() as http:
            deliver_due(db, settings, when.delivered, http)
        requests = {r.app: r for r in _requests(db) if r.topic == "company.redact"}
        with db.session() as session:
            for slug in (ATTESTS, CONTRADICTED):
                if slug in requests and requests[slug].status == "delivered":
                    vendor_id = standing.find(session, slug).vendor_id
                    assert vendor_id is not None
                    attest(
                        session,
                        settings,
                        vendor_id=vendor_id,
                        request_ref=requests[slug].id,
                        erased_at=when.attested - timedelta(hours=6),
                        name="情報セキュリティ責任者",
                        role="CISO",
                        statement="Deleted from the production database and every backup.",
                        now=when.attested,
                    )
        mailed: dict[str, str] | None = None
        if CONTRADICTED in disconnected:
            with db.session() as session:
                canaries = [
                    c
                    for c in list_canaries(session, app_ref=CONTRADICTED)
                    if c["connection"] == disconnected[CONTRADICTED] and c["email"]
                ]
            if canaries:
                mailed = {"customer": canaries[0]["customer"], "email": canaries[0]["email"]}
                _mail_canary(db, settings, mailed["email"], when.canary_mailed)
        monitor.run_once(when.checked)
    finally:
        stop()
    alerts = [
        {k: a[k] for k in ("id", "detector", "severity", "app", "company", "observed", "raised_at")}
        for a in alerts_by_app(db)
        if a["detector"] in OBLIGATION_DETECTORS
    ]
    return {
        "disconnected": disconnected,
        "disconnected_by": {slug: owners[picks[slug]] for slug in disconnected},
        "webhooks_received": sorted({r.app for r in received if r.status < 300}),
        "unsigned_refused": sum(1 for r in received if r.status == 401),
        "requests": [
            {"id": r.request, "app": r.app, "topic": r.topic, "status": r.status, "attestation": r.state}
            for r in _attestations(db, settings, when.checked)
            if r.app in STORY_APPS
        ],
        "canary_mailed": mailed,
        "alerts": alerts,
        "calendar": {k: v.isoformat() for k, v in asdict(when).items()},
    }


def _attestations(db: Database, settings: Settings, now: datetime) -> list[AttestationView]:
    with db.session() as session:
        return attestations(session, settings, now)


def _requests(db: Database) -> list[ErasureView]:
    with db.session() as session:
        return list_requests(session)
