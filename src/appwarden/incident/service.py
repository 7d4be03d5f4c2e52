"""Incident record operations: open, look up, timeline. The kill switch builds on :func:`open_incident`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.errors import InvalidInput, NotFound
from appwarden.incident.models import Incident, IncidentApp, TimelineEntry
from appwarden.marketplace.models import App


def open_incident(
    session: Session, *, apps: Sequence[App], reason: str, actor: str, title: str | None = None
) -> Incident:
    """Create an open incident about ``apps`` with its first timeline entry (no side effects on apps)."""
    if not apps:
        raise InvalidInput("an incident needs at least one app")
    if not reason.strip():
        raise InvalidInput("a reason is required")
    incident = Incident(
        title=title or f"Incident: {', '.join(a.slug for a in apps)}",
        reason=reason.strip(),
        opened_by=actor,
    )
    session.add(incident)
    session.flush()
    for app in apps:
        session.add(IncidentApp(incident_id=incident.id, app_id=app.id))
    add_timeline(
        session, incident, actor=actor, kind="opened", text=reason.strip(), apps=[a.slug for a in apps]
    )
    return incident


def add_timeline(
    session: Session, incident: Incident, *, actor: str, kind: str, text: str, **data: Any
) -> TimelineEntry:
    """Append to the incident's timeline (in the caller's transaction)."""
    entry = TimelineEntry(incident_id=incident.id, actor=actor, kind=kind, text=text, data=data)
    session.add(entry)
    session.flush()
    return entry


def get_incident(session: Session, ref: str) -> Incident:
    """Find an incident by its public id (``inc_…``)."""
    incident = session.scalar(select(Incident).where(Incident.public_id == ref))
    if incident is None:
        raise NotFound(f"no incident {ref!r}", code="incident_not_found")
    return incident


def incident_apps(session: Session, incident: Incident) -> list[App]:
    """The apps an incident concerns, by slug."""
    query = (
        select(App)
        .join(IncidentApp, IncidentApp.app_id == App.id)
        .where(IncidentApp.incident_id == incident.id)
        .order_by(App.slug)
    )
    return list(session.scalars(query))


def timeline(session: Session, incident: Incident) -> list[TimelineEntry]:
    query = select(TimelineEntry).where(TimelineEntry.incident_id == incident.id).order_by(TimelineEntry.id)
    return list(session.scalars(query))
