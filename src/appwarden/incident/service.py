"""Incident record operations: open, look up, timeline, notes, facts, close, describe. The kill switch
(``incident.killswitch``) builds on :func:`open_incident`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.errors import Conflict, InvalidInput, NotFound
from appwarden.events.service import EventTag, record, tally
from appwarden.hooks import Hook
from appwarden.incident.models import Incident, IncidentApp, TimelineEntry
from appwarden.incident.vocabulary import IncidentStatus, TimelineKind
from appwarden.marketplace.standing import AppStanding, standings
from appwarden.platform.directory import company_names

# Announced in the opener's transaction after an incident and its first timeline entry exist:
# ``(session, incident, app ids)``.
incident_opened: Hook[[Session, int, list[int]]] = Hook("incident opened")  # (session, incident id, app ids)


def open_incident(
    session: Session, *, apps: Sequence[AppStanding], reason: str, actor: str, title: str | None = None
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
        session,
        incident,
        actor=actor,
        kind=TimelineKind.OPENED,
        text=reason.strip(),
        apps=[a.slug for a in apps],
    )
    # Canary contacts raised before anyone opened an incident are evidence for this one (二次被害):
    # the canary package answers this announcement (``appwarden.wiring``).
    incident_opened(session, incident.id, [a.id for a in apps])
    return incident


def open_incidents_of(session: Session, app_id: int) -> list[Incident]:
    """Open incidents about the app, newest first."""
    return list(
        session.scalars(
            select(Incident)
            .join(IncidentApp, IncidentApp.incident_id == Incident.id)
            .where(IncidentApp.app_id == app_id, Incident.status == IncidentStatus.OPEN.value)
            .order_by(Incident.opened_at.desc(), Incident.id.desc())
        )
    )


class IncidentRef(NamedTuple):
    """An incident as a package that adds to it sees it: internal and public id."""

    id: int
    public_id: str


def open_incident_refs_of(session: Session, app_id: int) -> list[IncidentRef]:
    """The app's open incidents, newest first."""
    return [IncidentRef(incident.id, incident.public_id) for incident in open_incidents_of(session, app_id)]


def incident_public_ids(session: Session, incident_ids: Collection[int]) -> dict[int, str]:
    """``{incident id: public id}`` for callers that hold internal ids (a canary alert's incident)."""
    if not incident_ids:
        return {}
    rows = session.execute(select(Incident.id, Incident.public_id).where(Incident.id.in_(list(incident_ids))))
    return {incident_id: public for incident_id, public in rows}


def open_incidents_for(session: Session, app_ids: Sequence[int]) -> dict[int, Incident]:
    """The newest open incident of each of these apps that has one."""
    rows = session.execute(
        select(IncidentApp.app_id, Incident)
        .join(Incident, Incident.id == IncidentApp.incident_id)
        .where(IncidentApp.app_id.in_(list(app_ids)), Incident.status == IncidentStatus.OPEN.value)
        .order_by(Incident.id)
    ).all()
    return {app_id: incident for app_id, incident in rows}


def add_timeline(
    session: Session, incident: Incident, *, actor: str, kind: TimelineKind, text: str, **data: Any
) -> TimelineEntry:
    """Append to the incident's timeline (in the caller's transaction). ``kind`` is checked against
    :class:`TimelineKind` (a ValueError for anything else) and stored as its value."""
    entry = TimelineEntry(
        incident_id=incident.id, actor=actor, kind=TimelineKind(kind).value, text=text, data=data
    )
    session.add(entry)
    session.flush()
    return entry


def add_timeline_to(
    session: Session, incident_id: int, *, actor: str, kind: TimelineKind, text: str, **data: Any
) -> None:
    """:func:`add_timeline` for a package that holds the incident's internal id only (the canary watch,
    answering :data:`incident_opened` or finding the open incidents of an app)."""
    session.add(
        TimelineEntry(
            incident_id=incident_id, actor=actor, kind=TimelineKind(kind).value, text=text, data=data
        )
    )
    session.flush()


def get_incident(session: Session, ref: str) -> Incident:
    """Find an incident by its public id (``inc_…``)."""
    incident = session.scalar(select(Incident).where(Incident.public_id == ref))
    if incident is None:
        raise NotFound(f"no incident {ref!r}", code="incident_not_found")
    return incident


def incident_apps(session: Session, incident: Incident) -> list[AppStanding]:
    """The apps an incident concerns, by slug."""
    ids = session.scalars(select(IncidentApp.app_id).where(IncidentApp.incident_id == incident.id))
    return sorted(standings(session, list(ids)).values(), key=lambda app: app.slug)


def timeline(session: Session, incident: Incident) -> list[TimelineEntry]:
    query = select(TimelineEntry).where(TimelineEntry.incident_id == incident.id).order_by(TimelineEntry.id)
    return list(session.scalars(query))


def list_incidents(session: Session, *, status: str | None = None) -> list[Incident]:
    """Incidents, newest first (optionally only ``open`` or ``closed`` ones)."""
    query = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc())
    if status is not None:
        if status not in {s.value for s in IncidentStatus}:
            raise InvalidInput(f"unknown status {status!r} (choose open or closed)", parameter="status")
        query = query.where(Incident.status == IncidentStatus(status).value)
    return list(session.scalars(query))


def add_note(session: Session, incident: Incident, *, actor: str, text: str) -> TimelineEntry:
    """A free-text timeline entry (who, when, what)."""
    if not text.strip():
        raise InvalidInput("a note needs text", parameter="text")
    return add_timeline(session, incident, actor=actor, kind=TimelineKind.NOTE, text=text.strip())


def _fact(text: str, actor: str, **extra: Any) -> dict[str, Any]:
    return {"text": text, "at": utcnow().isoformat(), "by": actor, **extra}


def _pick(items: list[Any], number: int, which: str) -> int:
    """The 0-based index of fact ``number`` (1-based, as shown by ``incident show``)."""
    if not 1 <= number <= len(items):
        raise InvalidInput(f"there is no {which} fact #{number} (there are {len(items)})", parameter=which)
    return number - 1


def edit_facts(
    session: Session,
    incident: Incident,
    *,
    actor: str,
    known: str | None = None,
    unknown: str | None = None,
    resolve: int | None = None,
    remove_known: int | None = None,
    remove_unknown: int | None = None,
) -> Incident:
    """Edit the "known" / "not yet known" lists; each edit is a ``fact`` timeline entry.

    ``resolve=N`` moves open question N to the known list, answered by ``known`` (required with it);
    ``remove_*`` drops an entry made by mistake. Numbers are 1-based as shown by ``incident show``.
    """
    if resolve is not None and not (known and known.strip()):
        raise InvalidInput("--resolve N needs the answer as --known TEXT", parameter="known")
    if not any(v is not None for v in (known, unknown, remove_known, remove_unknown)):
        raise InvalidInput("nothing to change: give --known, --unknown, --resolve or --remove-*")
    for value, name in ((known, "known"), (unknown, "unknown")):
        if value is not None and not value.strip():
            raise InvalidInput(f"--{name} needs text", parameter=name)
    knowns, unknowns = list(incident.known or []), list(incident.unknown or [])
    changes: list[str] = []
    # Index-based edits first, against the lists as the operator saw them.
    if remove_known is not None:
        gone = knowns.pop(_pick(knowns, remove_known, "known"))
        changes.append(f"removed known: {_text(gone)}")
    answered: str | None = None
    drop_unknown = [i for i in (resolve, remove_unknown) if i is not None]
    if len(drop_unknown) == 2 and resolve == remove_unknown:
        raise InvalidInput("--resolve and --remove-unknown name the same fact")
    for index in sorted((_pick(unknowns, i, "unknown") for i in drop_unknown), reverse=True):
        gone = unknowns.pop(index)
        if resolve is not None and index == resolve - 1:
            answered = _text(gone)
        else:
            changes.append(f"removed unknown: {_text(gone)}")
    if known is not None:
        entry = _fact(known.strip(), actor, **({"answers": answered} if answered else {}))
        knowns.append(entry)
        changes.append(f"resolved: {answered} → {known.strip()}" if answered else f"known: {known.strip()}")
    if unknown is not None:
        unknowns.append(_fact(unknown.strip(), actor))
        changes.append(f"not yet known: {unknown.strip()}")
    incident.known, incident.unknown = knowns, unknowns  # new lists: JSON columns track assignment only
    for change in changes:
        add_timeline(session, incident, actor=actor, kind=TimelineKind.FACT, text=change)
    return incident


def close_incident(session: Session, incident: Incident, *, actor: str, text: str = "") -> Incident:
    """Close an open incident (409 ``incident_closed`` if it already is)."""
    if incident.status == IncidentStatus.CLOSED.value:
        raise Conflict(f"incident {incident.public_id} is already closed", code="incident_closed")
    incident.status = IncidentStatus.CLOSED.value
    incident.closed_at = utcnow()
    add_timeline(
        session, incident, actor=actor, kind=TimelineKind.CLOSED, text=text.strip() or "incident closed"
    )
    for app in incident_apps(session, incident):
        record(session, EventTag.INCIDENT_CLOSED, actor=actor, app_id=app.id, incident=incident.public_id)
    return incident


def _text(item: Any) -> str:
    return str(item.get("text", "")) if isinstance(item, dict) else str(item)


def refused_calls(session: Session, incident: Incident, *, samples: int = 5) -> dict[str, Any]:
    """Calls refused from the incident's apps since it opened (``broker:call:refused``; ``count`` sums
    the calls each capped row stands for)."""
    app_ids = [a.id for a in incident_apps(session, incident)]
    refused = tally(
        session, EventTag.CALL_REFUSED, app_ids=app_ids, since=incident.opened_at, samples=samples
    )
    names = company_names(session, refused.by_company)
    return {
        "count": refused.count,
        "rows": refused.rows,
        "first_at": _iso(refused.first_at),
        "last_at": _iso(refused.last_at),
        "by_company": {
            names[co].public_id: n
            for co, n in sorted(refused.by_company.items(), key=lambda i: names[i[0]].public_id)
        },
        "recent": [
            {
                "at": _iso(e.occurred_at),
                "path": e.data.get("path"),
                "method": e.data.get("method"),
                "remote": e.data.get("remote"),
                "token_id": e.data.get("token_id"),
                "count": e.data.get("count", 1),
            }
            for e in refused.recent
        ],
    }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def describe(session: Session, incident: Incident) -> dict[str, Any]:
    """The incident record as JSON (``incident show --json``, ``GET /admin/incidents/{id}``)."""
    return {
        "id": incident.public_id,
        "title": incident.title,
        "reason": incident.reason,
        "status": incident.status,
        "apps": [a.slug for a in incident_apps(session, incident)],
        "opened_by": incident.opened_by,
        "opened_at": _iso(incident.opened_at),
        "aware_at": _iso(incident.aware_at),
        "closed_at": _iso(incident.closed_at),
        "unauthorized_access": bool(incident.unauthorized_access),
        "known": [_as_fact(f) for f in incident.known or []],
        "unknown": [_as_fact(f) for f in incident.unknown or []],
        "timeline": [
            {"at": _iso(e.at), "actor": e.actor, "kind": e.kind, "text": e.text, "data": e.data}
            for e in timeline(session, incident)
        ],
        "refused_calls": refused_calls(session, incident),
    }


def summary(session: Session, incident: Incident) -> dict[str, Any]:
    """One line of ``incident list``."""
    return {
        "id": incident.public_id,
        "title": incident.title,
        "status": incident.status,
        "apps": [a.slug for a in incident_apps(session, incident)],
        "opened_at": _iso(incident.opened_at),
        "closed_at": _iso(incident.closed_at),
        "unknown": len(incident.unknown or []),
    }


def _as_fact(item: Any) -> dict[str, Any]:
    return dict(item) if isinstance(item, dict) else {"text": str(item)}
