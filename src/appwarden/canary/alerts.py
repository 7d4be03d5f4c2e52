"""Secondary-damage watch (二次被害): someone used a canary's phone number or mail address.

Only the one connection a canary was issued to ever received it, so contact with it proves that data
delivered to that app for that company is in someone else's hands and being used. Every channel (the
SMTP receiver in ``canary.listen``, the phone/SMS provider webhook in ``canary.api``) records through
:func:`record_hit`: a ``CanaryAlert`` row, a ``canary:alert:raised`` security event, a log warning and a
``canary`` entry in the timeline of each open incident about that app. An alert raised while no
incident is open stays unassigned and joins the timeline when one opens (:func:`attach_pending_alerts`,
the answer to ``incident.service.incident_opened``, wired by ``appwarden.wiring``), and every contact is
announced to the monitor's alert stream (``canary_contacted``). Timeline entries and
events name the app, company and connection — never the canary's values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.blind_index.normalize import email_key, phone_e164
from appwarden.canary.models import Canary, CanaryAlert
from appwarden.db.base import utcnow
from appwarden.errors import InvalidInput, NotFound
from appwarden.events.service import EventTag, record
from appwarden.hooks import Hook
from appwarden.incident.service import add_timeline_to, incident_public_ids, open_incident_refs_of
from appwarden.incident.vocabulary import TimelineKind
from appwarden.marketplace.service import app_slugs, get_app
from appwarden.oauth.service import connection_public_ids
from appwarden.platform.directory import company_names

Channel = Literal["smtp", "webhook"]
Kind = Literal["mail", "sms", "call", "other"]
KINDS: tuple[str, ...] = ("mail", "sms", "call", "other")
EXCERPT_CHARS = 500
# Beyond this many pending alerts, an opening incident gets one summary entry for the rest (a spam run
# to one canary can raise thousands; each stays queryable in ``canary alerts``).
ATTACH_INDIVIDUALLY = 50

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Contact:
    """A recorded contact with a canary, as announced to the alert stream (no canary values in it)."""

    alert: str  # the canary alert's public id
    app_id: int
    company_id: int
    connection_id: int
    channel: str
    kind: str
    received_at: datetime
    canary_customer_id: int  # the canary's customer row (the erasure check: was it attested erased?)


# Announced by every recorded contact, in its transaction; the monitor's alert stream answers
# (``monitor.canary.canary_contacted``, wired by ``appwarden.wiring``).
canary_contacted: Hook[[Session, Contact]] = Hook("canary contacted")


def address_key(address: str) -> tuple[str, str] | None:
    """``("email", normalised)`` or ``("phone", E.164)`` for a contacted address, or None if neither."""
    text = address.strip().strip("<>")
    if "@" in text:
        key = email_key(text)
        return ("email", key) if key else None
    e164 = phone_e164(text)
    return ("phone", e164) if e164 else None


def find_canary(session: Session, address: str) -> Canary | None:
    """The canary with this email or phone (any common spelling of it), or None."""
    key = address_key(address)
    if key is None:
        return None
    column = Canary.email if key[0] == "email" else Canary.phone
    return session.scalar(select(Canary).where(column == key[1]))


def _names(session: Session, alert: CanaryAlert) -> dict[str, str]:
    """Public names of the alert's app, company and connection (what the timeline may show)."""
    app = app_slugs(session, [alert.app_id])[alert.app_id]
    company = company_names(session, [alert.company_id])[alert.company_id].public_id
    connection = connection_public_ids(session, [alert.connection_id])[alert.connection_id]
    return {"app": app, "company": company, "connection": connection}


def _timeline_entry(session: Session, incident_id: int, alert: CanaryAlert, names: dict[str, str]) -> None:
    received = _iso(alert.received_at)
    text = (
        f"canary contact ({alert.kind} via {alert.channel}) at {received}: a canary issued only to "
        f"{names['app']} for company {names['company']} (connection {names['connection']}) was contacted — "
        "data delivered to that app is being used by someone (secondary damage / 二次被害)"
    )
    add_timeline_to(
        session,
        incident_id,
        actor=f"canary-{alert.channel}",
        kind=TimelineKind.CANARY,
        text=text,
        alert=alert.public_id,
        channel=alert.channel,
        contact=alert.kind,
        received_at=received,
        **names,
    )


def record_hit(
    session: Session,
    *,
    address: str,
    channel: Channel,
    kind: str,
    sender: str | None = None,
    subject: str | None = None,
    excerpt: str | None = None,
    detail: dict[str, Any] | None = None,
    received_at: datetime | None = None,
) -> CanaryAlert:
    """Record one contact with a canary (in the caller's transaction); 404 ``canary_not_found`` if the
    address is no canary's. Every channel goes through here."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", parameter="kind")
    canary = find_canary(session, address)
    if canary is None:
        raise NotFound("no canary has this address or number", code="canary_not_found")
    when = received_at or utcnow()
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    info = dict(detail or {})
    if excerpt:
        info["excerpt"] = excerpt[:EXCERPT_CHARS]
    alert = CanaryAlert(
        canary_customer_id=canary.customer_id,
        app_id=canary.app_id,
        connection_id=canary.connection_id,
        company_id=canary.company_id,
        channel=channel,
        kind=kind,
        address=canary.email if "@" in address else canary.phone,
        sender=(sender or "")[:320] or None,
        subject=subject,
        detail=info,
        received_at=when,
    )
    session.add(alert)
    session.flush()
    names = _names(session, alert)
    incidents = open_incident_refs_of(session, canary.app_id)
    if incidents:
        alert.incident_id = incidents[0].id
    for incident in incidents:
        _timeline_entry(session, incident.id, alert, names)
    record(
        session,
        EventTag.CANARY_ALERT,
        actor=f"canary-{channel}",
        app_id=canary.app_id,
        company_id=canary.company_id,
        alert=alert.public_id,
        channel=channel,
        kind=kind,
        connection=names["connection"],
        incidents=[i.public_id for i in incidents],
    )
    canary_contacted(
        session,
        Contact(
            alert=alert.public_id,
            app_id=alert.app_id,
            company_id=alert.company_id,
            connection_id=alert.connection_id,
            channel=channel,
            kind=kind,
            received_at=when,
            canary_customer_id=canary.customer_id,
        ),
    )
    log.warning(
        "canary contacted: leaked data in use",
        alert=alert.public_id,
        channel=channel,
        kind=kind,
        incidents=[i.public_id for i in incidents],
        **names,
    )
    return alert


def attach_pending_alerts(session: Session, incident_id: int, app_ids: Sequence[int]) -> int:
    """Give a newly opened incident the alerts about its apps that no incident has yet; returns how many."""
    pending = list(
        session.scalars(
            select(CanaryAlert)
            .where(CanaryAlert.app_id.in_(list(app_ids)), CanaryAlert.incident_id.is_(None))
            .order_by(CanaryAlert.received_at, CanaryAlert.id)
        )
    )
    for i, alert in enumerate(pending):
        alert.incident_id = incident_id
        if i < ATTACH_INDIVIDUALLY:
            _timeline_entry(session, incident_id, alert, _names(session, alert))
    rest = pending[ATTACH_INDIVIDUALLY:]
    if rest:
        add_timeline_to(
            session,
            incident_id,
            actor="canary-watch",
            kind=TimelineKind.CANARY,
            text=(
                f"{len(rest)} more canary contacts between {_iso(rest[0].received_at)} and "
                f"{_iso(rest[-1].received_at)} (see `appwarden canary alerts`)"
            ),
            alerts=len(rest),
        )
    return len(pending)


def list_alerts(
    session: Session, *, app_ref: str | None = None, limit: int = 200, alert_id: int | None = None
) -> list[dict[str, Any]]:
    """Alerts, newest first (optionally for one app, or the one alert ``alert_id``), for the security
    team."""
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", parameter="limit")
    query = select(CanaryAlert).order_by(CanaryAlert.received_at.desc(), CanaryAlert.id.desc()).limit(limit)
    if app_ref is not None:
        query = query.where(CanaryAlert.app_id == get_app(session, app_ref).id)
    if alert_id is not None:
        query = query.where(CanaryAlert.id == alert_id)
    rows = list(session.scalars(query))
    incidents = incident_public_ids(session, {a.incident_id for a in rows if a.incident_id is not None})
    slugs = app_slugs(session, {a.app_id for a in rows})
    companies = company_names(session, {a.company_id for a in rows})
    connections = connection_public_ids(session, {a.connection_id for a in rows})
    return [
        describe(
            alert,
            app=slugs[alert.app_id],
            company=companies[alert.company_id].public_id,
            connection=connections[alert.connection_id],
            incident=incidents.get(alert.incident_id or 0),
        )
        for alert in rows
    ]


def describe(
    alert: CanaryAlert, *, app: str, company: str, connection: str, incident: str | None
) -> dict[str, Any]:
    """One alert as JSON."""
    return {
        "id": alert.public_id,
        "received_at": _iso(alert.received_at),
        "app": app,
        "company": company,
        "connection": connection,
        "incident": incident,
        "channel": alert.channel,
        "kind": alert.kind,
        "address": alert.address,
        "sender": alert.sender,
        "subject": alert.subject,
        "detail": alert.detail,
    }


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
