"""What notices and report drafts are written from: the incident, its apps and vendors, what the platform did,
the blast radius and the affected companies' contacts, read once into plain data (no ORM objects escape).

The blast radius is the "Blast radius JSON" dict of docs/architecture.md
(``compute_blast_radius(...).to_dict()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.session import Database
from appwarden.incident.models import Incident, IncidentApp, TimelineEntry
from appwarden.incident.service import get_incident
from appwarden.incident.vocabulary import TimelineKind
from appwarden.incident.wording import kill_switch_summary
from appwarden.marketplace.standing import standings
from appwarden.marketplace.vendors import profile_of
from appwarden.platform.directory import company_contacts, store_contacts

# Timeline kinds that are the platform's own containment actions (what "the platform did").
ACTION_KINDS = (TimelineKind.KILL_SWITCH, TimelineKind.OPENED)


@dataclass(frozen=True)
class AppFacts:
    slug: str
    name: str
    vendor: str | None
    vendor_email: str | None
    killed_at: datetime | None


@dataclass(frozen=True)
class Action:
    at: datetime
    kind: str
    text: str  # as the timeline has it (English for the kill switch); ``in_lang`` words it for a reader
    params: Mapping[str, Any] = field(default_factory=dict)

    def in_lang(self, lang: str) -> Action:
        """The action with its text in ``lang``: the kill switch's from its counts, an opening as typed."""
        if self.kind == TimelineKind.KILL_SWITCH:
            return replace(self, text=kill_switch_summary(lang, self.params))
        return self


@dataclass(frozen=True)
class CompanyFacts:
    """One affected company: its blast-radius entry plus contacts from the platform."""

    id: str
    name: str
    email: str | None
    persons: int
    fields: dict[str, dict[str, int]]
    stores: list[dict[str, Any]]  # {id, name, persons_exposed, email}


@dataclass(frozen=True)
class CheckpointFacts:
    """The signed ledger checkpoint taken when the facts were read: notices carry it, so each company can
    hold the platform to the ledger its figures were counted from."""

    size: int
    hash: str
    note: str  # the signed note, as published
    vkey: str  # the platform's verifier key
    url: str  # where anyone fetches the latest checkpoint (the key at ``url + "/key"``)


@dataclass
class IncidentFacts:
    """Everything a notice or report needs, as plain data."""

    id: str
    title: str
    reason: str
    status: str
    opened_at: datetime
    aware_at: datetime
    unauthorized_access: bool
    # Fact entries as recorded ({"text", "at", "by", optional "code"/"params"}): see ``wording.fact_texts``.
    known: list[dict[str, Any]]
    unknown: list[dict[str, Any]]
    apps: list[AppFacts]
    actions: list[Action]
    blast: dict[str, Any]
    companies: list[CompanyFacts] = field(default_factory=list)
    checkpoint: CheckpointFacts | None = None

    def company(self, ref: str) -> CompanyFacts | None:
        """The affected company with public id or name ``ref``, or None if it was not affected."""
        return next((c for c in self.companies if ref in (c.id, c.name)), None)


def load_blast(db: Database, incident_ref: str) -> dict[str, Any]:
    """The incident's blast radius as the "Blast radius JSON" dict (docs/architecture.md)."""
    from appwarden.incident.blast_radius import compute_blast_radius

    result: dict[str, Any] = compute_blast_radius(db, incident_ref).to_dict()
    return result


def load_facts(db: Database, incident_ref: str, *, blast: Mapping[str, Any] | None = None) -> IncidentFacts:
    """Read the incident and its blast radius (computed now unless given) into :class:`IncidentFacts`.

    Only companies with ``persons_exposed > 0`` are affected; the others are left out here, so nothing
    downstream can address them.

    Every notice and report is written from these facts, so this is also where the ledger checkpoint is
    signed and published (issue 9: at every notice and report). It fails closed: if the ledger no longer
    extends the last checkpoint, its figures are not to be trusted and nothing is drafted from them.
    """
    if blast is None:
        blast = load_blast(db, incident_ref)  # raises NotFound(incident_not_found) for an unknown id
    with db.session() as session:
        incident = get_incident(session, incident_ref)
        facts = IncidentFacts(
            id=incident.public_id,
            title=incident.title,
            reason=incident.reason,
            status=incident.status,
            opened_at=incident.opened_at,
            aware_at=incident.aware_at,
            unauthorized_access=bool(incident.unauthorized_access),
            known=_entries(incident.known),
            unknown=_entries(incident.unknown),
            apps=_apps(session, incident),
            actions=_actions(session, incident),
            blast=dict(blast),
        )
        facts.companies = _companies(session, blast)
    facts.checkpoint = _checkpoint(db, facts.id)
    return facts


def _entries(items: list[Any] | None) -> list[dict[str, Any]]:
    """Fact lists hold ``{"text": …}`` entries (or, in old records, bare strings)."""
    return [dict(item) if isinstance(item, Mapping) else {"text": str(item)} for item in items or []]


def _checkpoint(db: Database, incident: str) -> CheckpointFacts:
    from appwarden.config import get_settings
    from appwarden.ledger.checkpoint import publish_checkpoint

    published = publish_checkpoint(db, reason=f"notice or report for {incident}", actor="incident")
    base = str(get_settings().base_url or "").rstrip("/")
    return CheckpointFacts(
        size=published.checkpoint.size,
        hash=published.checkpoint.hash_hex,
        note=published.note,
        vkey=published.vkey,
        url=f"{base}/ledger/checkpoint",
    )


def _apps(session: Session, incident: Incident) -> list[AppFacts]:
    killed = dict(
        session.execute(
            select(IncidentApp.app_id, IncidentApp.killed_at).where(IncidentApp.incident_id == incident.id)
        ).all()
    )
    apps = sorted(standings(session, list(killed)).values(), key=lambda app: app.slug)
    vendors = {app.vendor_id: profile_of(session, app.vendor_id) for app in apps if app.vendor_id is not None}
    facts = []
    for app in apps:
        vendor = vendors.get(app.vendor_id) if app.vendor_id is not None else None
        facts.append(
            AppFacts(
                slug=app.slug,
                name=app.name,
                vendor=vendor.name if vendor else None,
                vendor_email=vendor.contact_email if vendor else None,
                killed_at=killed[app.id],
            )
        )
    return facts


def _actions(session: Session, incident: Incident) -> list[Action]:
    entries = session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident.id, TimelineEntry.kind.in_(ACTION_KINDS))
        .order_by(TimelineEntry.at, TimelineEntry.id)
    ).all()
    kills = [e for e in entries if e.kind == TimelineKind.KILL_SWITCH]
    # The kill switch entry says what was done; without one, the opening entry is all there is.
    chosen = kills or [e for e in entries if e.kind == TimelineKind.OPENED]
    return [Action(at=e.at, kind=e.kind, text=e.text, params=dict(e.data or {})) for e in chosen]


def _companies(session: Session, blast: Mapping[str, Any]) -> list[CompanyFacts]:
    affected = [c for c in blast.get("companies", []) if int(c.get("persons_exposed", 0)) > 0]
    if not affected:
        return []
    ids = [c["id"] for c in affected]
    companies = company_contacts(session, ids)
    stores = store_contacts(session, [s["id"] for c in affected for s in c.get("stores", [])])
    out: list[CompanyFacts] = []
    for entry in affected:
        company = companies.get(entry["id"])
        store_rows = []
        for s in entry.get("stores", []):
            if int(s.get("persons_exposed", 0)) <= 0:
                continue
            row = stores.get(s["id"])
            store_rows.append(
                {
                    "id": s["id"],
                    "name": s.get("name") or (row.name if row else s["id"]),
                    "persons_exposed": int(s["persons_exposed"]),
                    "email": row.email if row else None,
                }
            )
        out.append(
            CompanyFacts(
                id=entry["id"],
                name=entry.get("name") or (company.name if company else entry["id"]),
                email=company.email if company else None,
                persons=int(entry["persons_exposed"]),
                fields={f: {k: int(v) for k, v in m.items()} for f, m in entry.get("fields", {}).items()},
                stores=store_rows,
            )
        )
    return out
