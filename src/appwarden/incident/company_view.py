"""One company's side of incidents, for its store owner: the notices it was sent (across incidents,
from the delivery log), the text of each, and the incidents that concern it (those whose apps received
its customers' data, or that sent it a notice).

A notice's text is not stored: it is drafted again from the incident's facts, exactly as
``incident notices`` drafts it (``notices.draft_notices``), dated as it was first logged. Every lookup
is by the company's internal id, so another company's incident is 404 ``incident_not_found``, the same
answer as an incident that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.session import Database
from appwarden.errors import NotFound
from appwarden.incident.context import load_facts
from appwarden.incident.models import Incident, IncidentApp, NoticeDelivery
from appwarden.incident.notices import NoticeDraft, draft_notices
from appwarden.ledger.exposure import received_by_company
from appwarden.marketplace.scopes import Mode

EXPOSING = frozenset({Mode.RAW.value, Mode.MASKED.value})


@dataclass(frozen=True, slots=True)
class CompanyNotice:
    """One incident's notice to the company, as the delivery log has it."""

    incident: str  # the incident's public id
    title: str
    recipient: str | None
    status: str  # a ``NoticeStatus`` value
    attempts: int
    sent_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CompanyIncident:
    """An incident that concerns the company."""

    incident: str
    title: str
    status: str  # an ``IncidentStatus`` value
    opened_at: datetime


def _not_found(ref: str) -> NotFound:
    return NotFound(f"no incident {ref!r} of this company", code="incident_not_found")


def company_notices(session: Session, company_id: int) -> list[CompanyNotice]:
    """Every notice logged for the company, newest incident first."""
    rows = session.execute(
        select(NoticeDelivery, Incident.public_id, Incident.title)
        .join(Incident, Incident.id == NoticeDelivery.incident_id)
        .where(NoticeDelivery.company_id == company_id)
        .order_by(Incident.opened_at.desc(), Incident.id.desc())
    ).all()
    return [
        CompanyNotice(ref, title, row.recipient, row.status, row.attempts, row.sent_at, row.created_at)
        for row, ref, title in rows
    ]


def company_notice(session: Session, company_id: int, incident_ref: str) -> CompanyNotice:
    """The company's notice of one incident; 404 ``incident_not_found`` when it has none."""
    found = next((n for n in company_notices(session, company_id) if n.incident == incident_ref), None)
    if found is None:
        raise _not_found(incident_ref)
    return found


def incidents_concerning(session: Session, company_id: int) -> list[CompanyIncident]:
    """Incidents whose apps received some of the company's customers' values, raw or masked (the
    ledger's counts), or that logged a notice to it; newest first."""
    pairs = session.execute(select(IncidentApp.incident_id, IncidentApp.app_id)).all()
    received: dict[int, bool] = {}
    chosen = {i for i, app_id in pairs if received.setdefault(app_id, _received(session, app_id, company_id))}
    chosen |= set(
        session.scalars(select(NoticeDelivery.incident_id).where(NoticeDelivery.company_id == company_id))
    )
    if not chosen:
        return []
    rows = session.scalars(
        select(Incident)
        .where(Incident.id.in_(chosen))
        .order_by(Incident.opened_at.desc(), Incident.id.desc())
    )
    return [CompanyIncident(r.public_id, r.title, r.status, r.opened_at) for r in rows]


def _received(session: Session, app_id: int, company_id: int) -> bool:
    """Whether the app received some value of the company's customers (raw or masked: what the blast
    radius counts as exposed; pseudonym tokens are not)."""
    rows = received_by_company(session, app_id, company_id=company_id)
    return any(r.people for r in rows if r.mode in EXPOSING)


def incident_concerning(session: Session, company_id: int, incident_ref: str) -> CompanyIncident:
    """One incident that concerns the company; 404 ``incident_not_found`` for any other."""
    found = next((i for i in incidents_concerning(session, company_id) if i.incident == incident_ref), None)
    if found is None:
        raise _not_found(incident_ref)
    return found


def notice_draft(db: Database, company_public_id: str, notice: CompanyNotice, *, contact: str) -> NoticeDraft:
    """The notice to the company, drafted from the incident's facts as ``incident notices`` drafts it,
    dated when it was first logged. 404 ``company_not_affected`` when the company no longer has anybody
    exposed in the incident (nothing to say)."""
    facts = load_facts(db, notice.incident)
    company = facts.company(company_public_id)
    if company is None:
        raise NotFound(
            f"company {company_public_id!r} has no exposed customers in incident {facts.id}",
            code="company_not_affected",
        )
    (draft,) = draft_notices(replace(facts, companies=[company]), contact=contact, now=notice.created_at)
    return draft
