"""Admin API for the kill switch and the incident record (``/admin/incidents``): the same operations as
``appwarden incident open|list|show|note|fact|close``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from appwarden.incident import service
from appwarden.incident.killswitch import kill_switch
from appwarden.incident.revocation import worker_signal
from appwarden.incident.vocabulary import IncidentStatus
from appwarden.web.deps import AdminDep, DatabaseDep
from appwarden.web.problems import ADMIN_AUTH, problem_responses
from appwarden.web.text import Body

router = APIRouter(
    prefix="/admin/incidents", tags=["admin: incidents"], responses=problem_responses(ADMIN_AUTH)
)
NOT_FOUND = {404: "`incident_not_found`: no incident has this id."}
CLOSED = {409: "`incident_closed`: the incident is closed."}


class OpenIn(Body):
    apps: list[str] = Field(min_length=1, max_length=50, description="Slugs or client ids.")
    reason: str = Field(min_length=1, max_length=5000)
    title: str | None = Field(default=None, max_length=300)


class NoteIn(Body):
    text: str = Field(min_length=1, max_length=20000)


class FactIn(Body):
    known: str | None = Field(default=None, max_length=5000)
    unknown: str | None = Field(default=None, max_length=5000)
    resolve: int | None = Field(default=None, description="Open question N (1-based) answered by `known`.")
    remove_known: int | None = None
    remove_unknown: int | None = None


class CloseIn(Body):
    note: str = Field(default="", max_length=5000)


@router.post(
    "",
    status_code=201,
    responses=problem_responses(
        {
            404: "`app_not_found`: an app named is unknown.",
            409: "`incident_already_open`: an app named has an open incident already.",
        }
    ),
)
def open_incident(body: OpenIn, request: Request, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Kill switch: delist, revoke every token, suspend every connection, open the incident — one
    transaction (404 ``app_not_found`` changes nothing) — then signal every worker."""
    signal = worker_signal(request.app)
    result = kill_switch(db, apps=body.apps, reason=body.reason, actor=actor, signal=signal, title=body.title)
    return result.to_dict()


@router.get("")
def list_incidents(
    actor: AdminDep, db: DatabaseDep, status: Annotated[IncidentStatus | None, Query()] = None
) -> dict[str, Any]:
    """Incidents, newest first."""
    with db.session() as session:
        return {"data": [service.summary(session, i) for i in service.list_incidents(session, status=status)]}


@router.get("/{incident}", responses=problem_responses(NOT_FOUND))
def show(incident: str, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """The record: apps, status, times, known / not yet known, timeline, refused calls."""
    with db.session() as session:
        return service.describe(session, service.get_incident(session, incident))


@router.post("/{incident}/notes", status_code=201, responses=problem_responses(NOT_FOUND))
def note(incident: str, body: NoteIn, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """A free-text timeline entry."""
    with db.session() as session:
        entry = service.add_note(
            session, service.get_incident(session, incident), actor=actor, text=body.text
        )
        return {"incident": incident, "at": entry.at.isoformat(), "actor": entry.actor, "text": entry.text}


@router.post("/{incident}/facts", responses=problem_responses(NOT_FOUND))
def facts(incident: str, body: FactIn, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Edit the known / not-yet-known lists."""
    with db.session() as session:
        row = service.edit_facts(
            session, service.get_incident(session, incident), actor=actor, **body.model_dump()
        )
        return {"incident": incident, "known": list(row.known), "unknown": list(row.unknown)}


@router.post("/{incident}/close", responses=problem_responses(NOT_FOUND | CLOSED))
def close(incident: str, body: CloseIn, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Close the incident (409 ``incident_closed`` if it already is); the apps stay delisted."""
    with db.session() as session:
        row = service.close_incident(
            session, service.get_incident(session, incident), actor=actor, text=body.note
        )
        return service.summary(session, row)
