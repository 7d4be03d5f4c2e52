"""Alerts: raise a finding once (deduplicated, capped per app per day), list, show and acknowledge.

Every alert, whoever raised it (a detector in the background run, or a canary contact through the
``canary contacted`` hook), goes through :func:`raise_alert`: one row in ``alerts``, one
``monitor:alert:raised`` security event, one log warning, and its outbox rows (action, webhook, mail:
``monitor.outbox``), in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.errors import Conflict, InvalidInput, NotFound
from appwarden.events.service import EventTag, record
from appwarden.ledger.queries import entries_between
from appwarden.marketplace.service import app_slugs, get_app
from appwarden.monitor import outbox
from appwarden.monitor.models import Alert
from appwarden.monitor.policy import Action, Detector, Severity
from appwarden.platform.directory import company_names

log = structlog.get_logger()
DETECTORS: frozenset[str] = frozenset(d.value for d in Detector)


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ALL = "all"


class Outcome(StrEnum):
    """What became of a finding handed to :func:`raise_alert`."""

    RAISED = "raised"
    DUPLICATE = "duplicate"  # the same finding (detector, app, company, window) was raised before
    CAPPED = "capped"  # the app had its day's alerts already


@dataclass(frozen=True)
class Finding:
    """What a detector saw: the numbers against their yardstick, in a window."""

    detector: Detector
    severity: Severity
    app_id: int
    company_id: int | None
    observed: dict[str, Any]
    baseline: dict[str, Any]
    window_start: datetime
    window_end: datetime
    # The window's identity for deduplication (default: its start); a detector with a sliding window
    # passes a coarser one (the day) so a finding that persists is raised once, not every run.
    dedup_window: str | None = None
    ledger_entries: list[int] | None = field(default=None)

    @property
    def dedup_key(self) -> str:
        window = self.dedup_window or _iso(self.window_start)
        return f"{self.detector}:{self.app_id}:{self.company_id or '-'}:{window}"


def raise_alert(
    session: Session, finding: Finding, *, cap: int, actor: str = "monitor", now: datetime | None = None
) -> tuple[Outcome, Alert | None]:
    """Store ``finding`` as an alert unless it was raised before or its app's daily cap is reached."""
    now = now or utcnow()
    if session.scalar(select(Alert.id).where(Alert.dedup_key == finding.dedup_key)) is not None:
        return Outcome.DUPLICATE, None
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = session.scalar(
        select(func.count(Alert.id)).where(
            Alert.app_id == finding.app_id, Alert.raised_at >= day, Alert.raised_at < day + timedelta(days=1)
        )
    )
    if (today or 0) >= cap:
        log.warning("alert cap reached: finding not raised", detector=str(finding.detector), cap=cap)
        return Outcome.CAPPED, None
    entries = finding.ledger_entries
    if entries is None:
        entries = entries_between(
            session,
            app_id=finding.app_id,
            company_id=finding.company_id,
            since=finding.window_start,
            until=finding.window_end,
        )
    alert = Alert(
        dedup_key=finding.dedup_key,
        detector=finding.detector.value,
        severity=finding.severity.value,
        app_id=finding.app_id,
        company_id=finding.company_id,
        observed=finding.observed,
        baseline=finding.baseline,
        window_start=finding.window_start,
        window_end=finding.window_end,
        action=Action.ALERT.value,
        ledger_entries=entries,
        raised_at=now,
    )
    try:
        # A savepoint: a concurrent raise of the same finding (the canary hook runs outside the run
        # lock) loses on the unique key without undoing the caller's transaction.
        with session.begin_nested():
            session.add(alert)
    except IntegrityError:
        return Outcome.DUPLICATE, None
    # Its action and deliveries are owed from here, in this transaction (done after it commits).
    outbox.enqueue(session, alert)
    record(
        session,
        EventTag.MONITOR_ALERT_RAISED,
        actor=actor,
        app_id=finding.app_id,
        company_id=finding.company_id,
        alert=alert.public_id,
        detector=alert.detector,
        severity=alert.severity,
    )
    log.warning(
        "monitor alert raised", alert=alert.public_id, detector=alert.detector, severity=alert.severity
    )
    return Outcome.RAISED, alert


def get_alert(session: Session, public_id: str) -> Alert:
    """The alert with this id; 404 ``alert_not_found``."""
    alert = session.scalar(select(Alert).where(Alert.public_id == public_id))
    if alert is None:
        raise NotFound(f"no alert {public_id[:60]!r}", code="alert_not_found")
    return alert


def acknowledge(session: Session, public_id: str, *, actor: str, note: str | None = None) -> Alert:
    """Mark an alert as seen and handled by ``actor``; 409 ``alert_acknowledged`` if it already was."""
    alert = get_alert(session, public_id)
    if alert.acknowledged_at is not None:
        raise Conflict(
            f"alert {public_id} was acknowledged at {_iso(alert.acknowledged_at)} by {alert.acknowledged_by}",
            code="alert_acknowledged",
        )
    text = (note or "").strip() or None
    if text is not None and len(text) > 2000:
        raise InvalidInput("note must be at most 2000 characters", parameter="note")
    alert.acknowledged_at = utcnow()
    alert.acknowledged_by = actor[:200]
    alert.note = text
    record(
        session,
        EventTag.MONITOR_ALERT_ACKNOWLEDGED,
        actor=actor,
        app_id=alert.app_id,
        company_id=alert.company_id,
        alert=alert.public_id,
        detector=alert.detector,
    )
    return alert


def list_alerts(
    session: Session,
    *,
    app_ref: str | None = None,
    detector: str | None = None,
    state: str = AlertState.OPEN,
    limit: int = 100,
) -> list[Alert]:
    """Alerts newest first, filtered; a bad filter is a precise error, an unknown app a 404."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", parameter="limit")
    if detector is not None and detector not in DETECTORS:
        raise InvalidInput(f"detector must be one of {', '.join(sorted(DETECTORS))}", parameter="detector")
    if state not in {s.value for s in AlertState}:
        raise InvalidInput("state must be open, acknowledged or all", parameter="state")
    query = select(Alert).order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit)
    if app_ref is not None:
        query = query.where(Alert.app_id == get_app(session, app_ref).id)
    if detector is not None:
        query = query.where(Alert.detector == detector)
    if state == AlertState.OPEN:
        query = query.where(Alert.acknowledged_at.is_(None))
    elif state == AlertState.ACKNOWLEDGED:
        query = query.where(Alert.acknowledged_at.is_not(None))
    return list(session.scalars(query))


def open_alert_counts(session: Session, app_ids: Collection[int]) -> dict[int, dict[str, int]]:
    """``{app id: {severity: open alerts}}`` for each of ``app_ids`` (empty when it has none): one
    grouped query, for the risk score."""
    counts: dict[int, dict[str, int]] = {app_id: {} for app_id in app_ids}
    if counts:
        query = (
            select(Alert.app_id, Alert.severity, func.count(Alert.id))
            .where(Alert.app_id.in_(list(counts)), Alert.acknowledged_at.is_(None))
            .group_by(Alert.app_id, Alert.severity)
        )
        for app_id, severity, n in session.execute(query):
            counts[app_id][severity] = n
    return counts


def describe(session: Session, alerts: list[Alert]) -> list[dict[str, Any]]:
    """Each alert as ``{"alert": <the alert JSON>, "acknowledged": null | {"at", "by", "note"}}``.

    The alert JSON has exactly the keys of the design (id, detector, severity, app, company, observed,
    baseline, window, action, ledger_entries, raised_at); acknowledgement is the team's, beside it.
    """
    slugs = app_slugs(session, {a.app_id for a in alerts})
    companies = company_names(session, {a.company_id for a in alerts if a.company_id is not None})
    views = []
    for a in alerts:
        document = {
            "id": a.public_id,
            "detector": a.detector,
            "severity": a.severity,
            "app": slugs[a.app_id],
            "company": companies[a.company_id].public_id if a.company_id is not None else None,
            "observed": a.observed,
            "baseline": a.baseline,
            "window": {"start": _iso(a.window_start), "end": _iso(a.window_end)},
            "action": a.action,
            "ledger_entries": list(a.ledger_entries),
            "raised_at": _iso(a.raised_at),
        }
        acknowledged = (
            None
            if a.acknowledged_at is None
            else {"at": _iso(a.acknowledged_at), "by": a.acknowledged_by, "note": a.note}
        )
        views.append({"alert": document, "acknowledged": acknowledged})
    return views


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat().replace("+00:00", "Z")
