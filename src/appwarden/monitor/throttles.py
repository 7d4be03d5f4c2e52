"""Throttles: a lower quota for an app × company, set by an alert's action and lifted by an operator.

A throttle is a row of ``monitor_throttles``: ``factor`` × the connection's usual limits until it
expires or is lifted. The quotas (``monitor.quotas``) read every standing throttle in one query and keep
them for ``throttle_cache_seconds``; the worker that sets or lifts one forgets its copy at once, the
others see it within that bound — through the database, so every worker of a Redis-shared deployment
does. The table holds only the throttles of recent alerts: the read is small.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.errors import Conflict, InvalidInput
from appwarden.events.service import EventTag, record
from appwarden.marketplace.service import app_slugs, get_app
from appwarden.monitor.models import Alert, Throttle
from appwarden.monitor.service import get_alert
from appwarden.platform.directory import company_names

Key = tuple[int, int | None]  # (app id, company id or None for every company of the app)


def standing(session: Session, now: datetime) -> dict[Key, float]:
    """Every throttle in force at ``now``: the smallest factor per (app, company or None)."""
    rows = session.execute(
        select(Throttle.app_id, Throttle.company_id, Throttle.factor).where(
            Throttle.lifted_at.is_(None), Throttle.expires_at > now
        )
    )
    factors: dict[Key, float] = {}
    for app_id, company_id, factor in rows:
        key = (app_id, company_id)
        factors[key] = min(factor, factors.get(key, factor))
    return factors


def throttle(
    session: Session, alert: Alert, *, factor: float, hours: float, actor: str, now: datetime
) -> Throttle:
    """Throttle the alert's connection (its whole app if the alert names no company) from ``now``."""
    row = Throttle(
        alert_id=alert.id,
        app_id=alert.app_id,
        company_id=alert.company_id,
        factor=factor,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(row)
    session.flush()
    record(
        session,
        EventTag.MONITOR_APP_THROTTLED,
        actor=actor,
        app_id=alert.app_id,
        company_id=alert.company_id,
        alert=alert.public_id,
        throttle=row.public_id,
        factor=factor,
        expires_at=_iso(row.expires_at),
    )
    return row


def lift(
    session: Session, ref: str, *, actor: str, reason: str, now: datetime | None = None
) -> list[Throttle]:
    """Lift the standing throttles of an alert (``alr_…``) or of an app (slug or client id).

    422 ``reason_required`` without a reason; 404 ``alert_not_found`` / ``app_not_found``; 409
    ``not_throttled`` when nothing it names is throttled now."""
    text = reason.strip()
    if not text:
        raise InvalidInput(
            "unthrottling needs a reason (why the throttle was wrong or is done)", code="reason_required"
        )
    if len(text) > 2000:
        raise InvalidInput("reason must be at most 2000 characters", parameter="reason")
    now = now or utcnow()
    query = select(Throttle).where(Throttle.lifted_at.is_(None), Throttle.expires_at > now)
    if ref.startswith("alr_"):
        alert = get_alert(session, ref)
        query, what = query.where(Throttle.alert_id == alert.id), f"alert {alert.public_id}"
    else:
        app = get_app(session, ref)
        query, what = query.where(Throttle.app_id == app.id), f"app {app.slug}"
    rows = list(session.scalars(query.order_by(Throttle.id)))
    if not rows:
        raise Conflict(f"{what} has no throttle in force", code="not_throttled")
    for row in rows:
        row.lifted_at = now
        row.lifted_by = actor[:200]
        row.lift_reason = text
        record(
            session,
            EventTag.MONITOR_APP_UNTHROTTLED,
            actor=actor,
            app_id=row.app_id,
            company_id=row.company_id,
            throttle=row.public_id,
            reason=text,
        )
    return rows


def list_throttles(
    session: Session, *, app_ref: str | None = None, include_past: bool = False, now: datetime | None = None
) -> list[Throttle]:
    """Throttles newest first: those in force, or every one with ``include_past``."""
    now = now or utcnow()
    query = select(Throttle).order_by(Throttle.id.desc()).limit(1000)
    if not include_past:
        query = query.where(Throttle.lifted_at.is_(None), Throttle.expires_at > now)
    if app_ref is not None:
        query = query.where(Throttle.app_id == get_app(session, app_ref).id)
    return list(session.scalars(query))


def describe(session: Session, rows: list[Throttle], *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each throttle as JSON: id, alert, app, company (None: every company), factor, times, state."""
    now = now or utcnow()
    slugs = app_slugs(session, {r.app_id for r in rows})
    companies = company_names(session, {r.company_id for r in rows if r.company_id is not None})
    ids = select(Alert.id, Alert.public_id).where(Alert.id.in_([r.alert_id for r in rows]))
    alerts = {alert_id: public for alert_id, public in session.execute(ids)}
    views = []
    for r in rows:
        state = (
            "lifted" if r.lifted_at is not None else "expired" if _aware(r.expires_at) <= now else "in_force"
        )
        views.append(
            {
                "id": r.public_id,
                "alert": alerts.get(r.alert_id),
                "app": slugs[r.app_id],
                "company": companies[r.company_id].public_id if r.company_id is not None else None,
                "factor": r.factor,
                "created_at": _iso(r.created_at),
                "expires_at": _iso(r.expires_at),
                "state": state,
                "lifted": None
                if r.lifted_at is None
                else {"at": _iso(r.lifted_at), "by": r.lifted_by, "reason": r.lift_reason},
            }
        )
    return views


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _aware(value).isoformat().replace("+00:00", "Z")
