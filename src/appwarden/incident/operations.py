"""Incident operations as a person at the console does them: each a service call plus the security
event that names who did it (the CLI and admin API record the same work on the timeline).

- :func:`add_fact`: a known fact or an open question (``service.edit_facts``), event
  ``incident:facts:edited``.
- :func:`send_store_notices`: the notices of ``incident notices --send`` (``delivery.send_notices``),
  event ``incident:notices:sent``.
- :func:`report_draft`: one company's report of ``incident report`` (``reports.draft_reports``), on the
  timeline (``reports.record_drafted``), event ``incident:report:drafted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appwarden.config import Settings
from appwarden.db.session import Database
from appwarden.errors import InvalidInput
from appwarden.events.service import EventTag, record
from appwarden.incident.context import load_facts
from appwarden.incident.delivery import SendReport, delivery_log, parse_smtp_url, send_notices
from appwarden.incident.notices import NoticeDraft, draft_notices
from appwarden.incident.reports import FORMATS, draft_reports, record_drafted
from appwarden.incident.service import edit_facts, get_incident, incident_apps

FACT_KINDS = ("known", "unknown")


def add_fact(db: Database, incident: str, *, kind: str, text: str, actor: str) -> None:
    """Add ``text`` to the incident's known facts (``kind="known"``) or open questions (``"unknown"``)."""
    if kind not in FACT_KINDS:
        raise InvalidInput(f"unknown fact kind {kind!r} (choose known or unknown)", parameter="kind")
    with db.session() as session:
        row = get_incident(session, incident)
        if kind == "known":
            edit_facts(session, row, actor=actor, known=text)
        else:
            edit_facts(session, row, actor=actor, unknown=text)
        for app in incident_apps(session, row):
            record(
                session, EventTag.INCIDENT_FACTS_EDITED, actor=actor, app_id=app.id,
                incident=row.public_id, kind=kind,
            )  # fmt: skip


def notice_drafts(db: Database, incident: str, settings: Settings) -> list[NoticeDraft]:
    """The notices ``incident notices`` writes: one per affected company, both languages."""
    return draft_notices(load_facts(db, incident), contact=settings.security_contact)


@dataclass(frozen=True, slots=True)
class NoticesSent:
    """One send batch (``incident notices --send``) and the delivery log after it."""

    report: dict[str, Any]
    log: list[dict[str, Any]]


def send_store_notices(db: Database, incident: str, settings: Settings, *, actor: str) -> NoticesSent:
    """Deliver every notice not yet sent over SMTP (``APPWARDEN_SMTP_URL``); 503 ``smtp_not_configured``
    before any work when no server is set."""
    with db.session() as session:
        get_incident(session, incident)  # an unknown incident is 404, whatever the mail set-up
    parse_smtp_url(settings.smtp_target)
    facts = load_facts(db, incident)
    drafts = draft_notices(facts, contact=settings.security_contact)
    report: SendReport = send_notices(
        db,
        drafts,
        incident=facts.id,
        smtp_url=settings.smtp_target,
        sender=settings.security_contact,
        actor=actor,
    )
    with db.session() as session:
        for app in incident_apps(session, get_incident(session, incident)):
            record(
                session, EventTag.INCIDENT_NOTICES_SENT, actor=actor, app_id=app.id, incident=facts.id,
                sent=report.sent, failed=[f.get("company") for f in report.failed],
            )  # fmt: skip
    return NoticesSent(report.to_dict(), delivery_log(db, facts.id))


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report draft rendered for download."""

    filename: str
    media_type: str
    body: bytes


MEDIA = {"md": "text/markdown; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}


def report_draft(
    db: Database,
    incident: str,
    settings: Settings,
    *,
    company: str,
    kind: str,
    lang: str,
    fmt: str,
    actor: str,
) -> ReportFile:
    """One affected company's report draft (``incident report --company``), recorded on the timeline."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r} (choose one of {', '.join(FORMATS)})", parameter="format")
    facts = load_facts(db, incident)
    (draft,) = draft_reports(facts, kind=kind, lang=lang, contact=settings.security_contact, company=company)
    body = draft.render(fmt)
    record_drafted(db, facts, [draft], fmt=fmt, actor=actor)
    with db.session() as session:
        for app in incident_apps(session, get_incident(session, incident)):
            record(
                session, EventTag.INCIDENT_REPORT_DRAFTED, actor=actor, app_id=app.id, incident=facts.id,
                company=draft.company_id, kind=kind, lang=lang, format=fmt,
            )  # fmt: skip
    return ReportFile(draft.filename(fmt), MEDIA[fmt], body)
