"""Re-audits: due dates by tier, reminders to the vendor 30 and 7 days before (each once), and on lapse
the app restricted and every connected company told — all against an injected ``now``.

An audit with no due date (``due_at`` None) is due at once: grandfathered apps start so. It shows as
overdue in ``audits due`` but does not lapse on its own: the operator sets its date with ``audits
schedule`` (a grandfathered app keeps working until then). Mail goes through ``appwarden.mail``;
a reminder or a notice is marked sent only after the SMTP server took it, so a failed send is retried
by the next run.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import Conflict, InvalidInput, Unavailable
from appwarden.events.service import EventTag, record
from appwarden.mail import plain_message, send_messages
from appwarden.marketplace import standing
from appwarden.marketplace.standing import AppStanding
from appwarden.marketplace.tiers import AUDIT_INTERVAL_MONTHS
from appwarden.marketplace.vendors import profile_of
from appwarden.marketplace.vocabulary import LifecycleState, RestrictedPolicy
from appwarden.oauth.service import connected_company_ids
from appwarden.platform.staff import owner_addresses
from appwarden.screening.models import Audit
from appwarden.screening.vocabulary import AuditStatus

REMINDER_DAYS = (30, 7)
AUDIT_ACTOR = "audit-check"


class Step(StrEnum):
    REMIND_30 = "remind_30"
    REMIND_7 = "remind_7"
    LAPSE = "lapse"


def add_months(when: datetime, months: int) -> datetime:
    """``when`` plus ``months`` calendar months (the day clipped to the month's last)."""
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))


def due_after(tier: int, start: datetime) -> datetime | None:
    """When the next audit is due for ``tier`` (tier 3: 6 months, 2: 12, 1: 24; tier 0: never)."""
    months = AUDIT_INTERVAL_MONTHS[tier]
    return None if months is None else add_months(start, months)


def steps_due(audit: Audit, now: datetime) -> list[Step]:
    """What the check owes this audit at ``now`` (pure): reminders not yet sent, the lapse."""
    if audit.status != AuditStatus.OPEN or audit.due_at is None:
        return []
    left = audit.due_at - now
    steps: list[Step] = []
    if left <= timedelta(0):
        return [Step.LAPSE]
    if left <= timedelta(days=30) and audit.reminded_30_at is None and left > timedelta(days=7):
        steps.append(Step.REMIND_30)
    if left <= timedelta(days=7) and audit.reminded_7_at is None:
        steps.append(Step.REMIND_7)
    return steps


def open_audit(session: Session, app: AppStanding) -> Audit | None:
    query = select(Audit).where(Audit.app_id == app.id, Audit.status == AuditStatus.OPEN.value)
    return session.scalar(query.order_by(Audit.id.desc()).limit(1))


def schedule_next(
    session: Session, app: AppStanding, *, tier: int, now: datetime, actor: str
) -> Audit | None:
    """After an approval or a passed audit: close any open audit, open the next by the tier."""
    current = open_audit(session, app)
    if current is not None:
        current.status, current.passed_at, current.passed_by = AuditStatus.PASSED.value, now, actor
    due = due_after(tier, now)
    if due is None:
        return None
    audit = Audit(app_id=app.id, tier=tier, due_at=due, created_at=now)
    session.add(audit)
    record(session, EventTag.AUDIT_SCHEDULED, actor=actor, app_id=app.id, due_at=due.isoformat(), tier=tier)
    return audit


def schedule(session: Session, app: AppStanding, due: datetime | None, *, actor: str, now: datetime) -> Audit:
    """``audits schedule``: set the open audit's due date (None: due at once); open one if none."""
    if due is not None and due.tzinfo is None:
        raise InvalidInput("the due date needs a time zone", code="invalid_date")
    due = due.astimezone(UTC) if due is not None else None
    tier = standing.tier(session, app.id)
    audit = open_audit(session, app)
    if audit is None:
        audit = Audit(app_id=app.id, tier=tier, created_at=now)
        session.add(audit)
    audit.tier, audit.due_at = tier, due
    audit.reminded_30_at = audit.reminded_7_at = None
    record(
        session,
        EventTag.AUDIT_SCHEDULED,
        actor=actor,
        app_id=app.id,
        due_at=due.isoformat() if due else None,
        tier=tier,
    )
    session.flush()
    return audit


def pass_audit(session: Session, app: AppStanding, *, actor: str, notes: str, now: datetime) -> Audit | None:
    """The audit passed: schedule the next one; a restricted app is relisted."""
    if not notes.strip():
        raise InvalidInput("a passed audit needs notes (what was checked)", code="reason_required")
    if app.listing_state not in (LifecycleState.LISTED, LifecycleState.RESTRICTED):
        raise Conflict(
            f"app {app.slug!r} is {app.listing_state}; only listed or restricted apps are audited",
            code="invalid_transition",
        )
    tier = standing.tier(session, app.id)
    record(session, EventTag.AUDIT_PASSED, actor=actor, app_id=app.id, notes=notes.strip())
    nxt = schedule_next(session, app, tier=tier, now=now, actor=actor)
    if app.listing_state == LifecycleState.RESTRICTED:
        standing.relist(session, app.id, actor=actor, reason=f"audit passed: {notes.strip()}", now=now)
    standing.end_grandfathering(session, app.id)
    return nxt


def due(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Every open audit, soonest first (no date: due now, first)."""
    rows = []
    open_audits = list(session.scalars(select(Audit).where(Audit.status == AuditStatus.OPEN.value)))
    apps = standing.standings(session, {audit.app_id for audit in open_audits})
    for audit in open_audits:
        app = apps[audit.app_id]
        if app.listing_state == LifecycleState.DELISTED:
            continue
        days = None if audit.due_at is None else (audit.due_at - now).total_seconds() / 86400
        rows.append(
            {
                "app": app.slug,
                "tier": audit.tier,
                "state": app.listing_state,
                "grandfathered": bool(app.grandfathered),
                "due_at": audit.due_at.isoformat() if audit.due_at else None,
                "days_left": None if days is None else int(days // 1),
                "overdue": days is None or days <= 0,
                "reminded": [d for d, at in ((30, audit.reminded_30_at), (7, audit.reminded_7_at)) if at],
            }
        )
    return sorted(rows, key=lambda r: (r["due_at"] is not None, r["due_at"] or "", r["app"]))


@dataclass(frozen=True, slots=True)
class Posture:
    """Where an app stands with screening at ``now``: reviewed or not, grandfathered, and its open
    audit (tier, due date; due at once when it has no date) if it has one."""

    reviewed: bool
    grandfathered: bool
    audit_tier: int | None  # the open audit's tier; None: no open audit
    due_at: datetime | None
    overdue: bool
    days_overdue: int | None  # None when not overdue or due at once with no date


def postures(session: Session, apps: Sequence[AppStanding], now: datetime) -> dict[int, Posture]:
    """Each app's :class:`Posture` (one query for every app's open audits). A grandfathered app with
    no audit yet is overdue: its first audit is due at once (issue 11)."""
    ids = [app.id for app in apps]
    audits: dict[int, Audit] = {}
    if ids:
        query = select(Audit).where(Audit.app_id.in_(ids), Audit.status == AuditStatus.OPEN.value)
        for row in session.scalars(query.order_by(Audit.id)):
            audits[row.app_id] = row  # the latest open one wins
    result = {}
    for app in apps:
        audit = audits.get(app.id)
        due_at = audit.due_at if audit is not None else None
        overdue = (audit is not None and (due_at is None or due_at <= now)) or (
            audit is None and bool(app.grandfathered)
        )
        late = int((now - due_at).total_seconds() // 86400) if overdue and due_at is not None else None
        result[app.id] = Posture(
            reviewed=not app.grandfathered and app.approved_version is not None,
            grandfathered=bool(app.grandfathered),
            audit_tier=audit.tier if audit is not None else None,
            due_at=due_at,
            overdue=overdue,
            days_overdue=late,
        )
    return result


@dataclass
class CheckReport:
    """What one audit check did."""

    now: str
    reminded: list[dict[str, Any]] = field(default_factory=list)
    restricted: list[str] = field(default_factory=list)
    companies_told: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)  # mail not sent: retried by the next run

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "reminded": self.reminded,
            "restricted": self.restricted,
            "companies_told": self.companies_told,
            "failed": self.failed,
        }


def run(db: Database, settings: Settings, *, now: datetime) -> CheckReport:
    """The periodic check: reminders, lapses (restrict, then tell the companies), in that order."""
    report = CheckReport(now.isoformat())
    with db.session() as session:
        audit_ids = list(session.scalars(select(Audit.id).where(Audit.status != AuditStatus.PASSED.value)))
    for audit_id in audit_ids:
        try:
            _check_one(db, settings, audit_id, now, report)
        except Unavailable as exc:  # SMTP down or not configured: nothing marked sent, retried next run
            report.failed.append({"audit": str(audit_id), "error": exc.detail})
    return report


def _check_one(db: Database, settings: Settings, audit_id: int, now: datetime, report: CheckReport) -> None:
    with db.session() as session:
        audit = session.get(Audit, audit_id)
        assert audit is not None
        app = standing.standing_of(session, audit.app_id)
        for step in steps_due(audit, now):
            if step == Step.LAPSE:
                if _claim(session, audit_id, "lapsed_at", now):
                    _lapse(session, app, audit, settings, now)
                    report.restricted.append(app.slug)
            else:
                days = 30 if step == Step.REMIND_30 else 7
                if _claim(session, audit_id, f"reminded_{days}_at", now):
                    _remind(session, app, audit, settings, days)
                    record(session, EventTag.AUDIT_REMINDED, actor=AUDIT_ACTOR, app_id=app.id, days=days)
                    report.reminded.append({"app": app.slug, "days": days})
    with db.session() as session:  # lapsed earlier (this run or a failed one): tell the companies
        audit = session.get(Audit, audit_id)
        assert audit is not None
        if audit.status == AuditStatus.LAPSED and _claim(session, audit_id, "companies_told_at", now):
            app = standing.standing_of(session, audit.app_id)
            told = _tell_companies(session, app, settings)
            report.companies_told.append({"app": app.slug, "companies": told})


def _claim(session: Session, audit_id: int, column: str, now: datetime) -> bool:
    """Mark ``column`` done at ``now`` unless another run already has; True if this run claimed it.

    The conditional UPDATE waits for a concurrent claimant's commit (PostgreSQL's row lock, SQLite's
    write lock) and then finds the column set, so two workers never send the same mail. The mail goes
    out after the claim, in the same transaction: a failed send rolls the claim back for the next run.
    """
    done = getattr(Audit, column)
    result = session.execute(
        update(Audit).where(Audit.id == audit_id, done.is_(None)).values({column: now}),
        execution_options={"synchronize_session": "fetch"},
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _lapse(session: Session, app: AppStanding, audit: Audit, settings: Settings, now: datetime) -> None:
    audit.status, audit.lapsed_at = AuditStatus.LAPSED.value, now
    record(
        session,
        EventTag.AUDIT_LAPSED,
        actor=AUDIT_ACTOR,
        app_id=app.id,
        due_at=audit.due_at.isoformat() if audit.due_at else None,
    )
    if app.listing_state == LifecycleState.LISTED:
        standing.transition(
            session,
            app.id,
            LifecycleState.RESTRICTED,
            actor=AUDIT_ACTOR,
            now=now,
            reason=f"audit due {audit.due_at:%Y-%m-%d} lapsed",
            policy=RestrictedPolicy(settings.restricted_policy),
        )
    # The next audit is due at once: passing it relists the app.
    session.add(Audit(app_id=app.id, tier=audit.tier, due_at=None, created_at=now))


def _remind(session: Session, app: AppStanding, audit: Audit, settings: Settings, days: int) -> None:
    vendor = profile_of(session, app.vendor_id) if app.vendor_id else None
    if vendor is None or not vendor.contact_email:
        return  # nobody to remind: the due list still shows it
    assert audit.due_at is not None
    body = (
        f"The security audit of {app.name} ({app.slug}), data tier {audit.tier}, is due on "
        f"{audit.due_at:%Y-%m-%d} ({days} days). If it lapses, the app is restricted automatically.\n\n"
        f"Contact: {settings.security_contact}\n"
    )
    send_messages(
        settings.smtp_target,
        [
            plain_message(
                sender=settings.security_contact,
                to=vendor.contact_email,
                subject=f"[appwarden] Audit of {app.slug} due in {days} days",
                body=body,
            )
        ],
    )


def _tell_companies(session: Session, app: AppStanding, settings: Settings) -> list[str]:
    addresses = owner_addresses(session, connected_company_ids(session, app.id))
    policy = (
        "identifying fields reach it only as tokens"
        if app.policy_in_force == RestrictedPolicy.TOKEN
        else "it receives no data"
    )
    messages = []
    for _company_id, (name, emails) in sorted(addresses.items()):
        for email in emails:
            body = (
                f"{name} 御中 / Dear {name},\n\nThe app {app.name} ({app.slug}) connected to your company "
                f"missed its security audit and is now restricted: {policy} until it passes.\n"
                f"You can disconnect it at any time.\n\nContact: {settings.security_contact}\n"
            )
            messages.append(
                plain_message(
                    sender=settings.security_contact,
                    to=email,
                    subject=f"[appwarden] {app.slug} is restricted",
                    body=body,
                )
            )
    send_messages(settings.smtp_target, messages)
    return [m["To"] for m in messages]
