"""Sending store notices over SMTP with a delivery log (:class:`NoticeDelivery`).

A notice is sent at most once: before a send the row is claimed by a conditional update (``pending`` or
``failed`` → ``sending``, committed), so two runs at the same time cannot both send it; after the SMTP
transaction it becomes ``sent`` or ``failed`` (with the error). Re-running retries only ``failed`` and
``pending`` rows. A row left ``sending`` (the process died mid-send) is not retried automatically, since
the message may have gone out; the log shows it.
"""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.incident.models import NoticeDelivery
from appwarden.incident.notices import NoticeDraft, notice_recipients
from appwarden.incident.service import add_timeline, get_incident
from appwarden.incident.vocabulary import NoticeStatus, TimelineKind
from appwarden.mail import SmtpTarget, connect, parse_smtp_url
from appwarden.platform.directory import company_contacts, company_names, store_contacts

NO_EMAIL = (
    "neither the company nor its affected stores have an email address on file "
    "(set Company.email, then re-run to retry)"
)


@dataclass
class SendReport:
    """What one send batch did."""

    incident: str
    sent: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident": self.incident,
            "sent": self.sent,
            "failed": self.failed,
            "already_sent": self.already_sent,
            "in_flight": self.in_flight,
        }


def send_notices(
    db: Database,
    drafts: list[NoticeDraft],
    *,
    incident: str,
    smtp_url: str | None,
    sender: str,
    actor: str,
    connector: Callable[[SmtpTarget], smtplib.SMTP] = connect,
) -> SendReport:
    """Deliver every notice not yet sent; record each attempt; one ``notice`` timeline entry per batch."""
    target = parse_smtp_url(smtp_url)
    report = SendReport(incident)
    rows = _ensure_rows(db, incident, drafts)
    smtp: smtplib.SMTP | None = None
    try:
        for draft in drafts:
            row_id, status = rows[draft.company.id]
            if status == NoticeStatus.SENT:
                report.already_sent.append(draft.company.id)
                continue
            recipient = _current_recipient(db, draft)
            if not _claim(db, row_id, recipient):
                report.in_flight.append(draft.company.id)  # another run holds it, or it was sent meanwhile
                continue
            if recipient is None:
                _finish(db, row_id, error=NO_EMAIL)
                report.failed.append({"company": draft.company.id, "error": NO_EMAIL})
                continue
            message = draft.message(sender)
            message.replace_header("To", recipient)
            try:
                if smtp is None:
                    smtp = connector(target)
                smtp.send_message(message)  # one recipient: a refusal raises SMTPRecipientsRefused
            except (smtplib.SMTPException, OSError) as exc:
                error = _describe(exc)
                _finish(db, row_id, error=error)
                report.failed.append({"company": draft.company.id, "error": error})
                # A refusal (a 4xx/5xx reply) leaves the session usable; anything else (connection lost,
                # timeout) means a fresh connection for the next notice.
                if smtp is not None and not isinstance(
                    exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException
                ):
                    with contextlib.suppress(OSError):
                        smtp.close()
                    smtp = None
                continue
            _finish(db, row_id, error=None, sent=True)
            report.sent.append(draft.company.id)
    finally:
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
    if report.sent or report.failed:
        with db.session() as session:
            add_timeline(
                session,
                get_incident(session, incident),
                actor=actor,
                kind=TimelineKind.NOTICE,
                text=f"store notices: {len(report.sent)} sent, {len(report.failed)} failed, "
                f"{len(report.already_sent)} already sent",
                sent=report.sent,
                failed=report.failed,
                already_sent=report.already_sent,
                in_flight=report.in_flight,
            )
    return report


def delivery_log(db: Database, incident: str) -> list[dict[str, Any]]:
    """Every notice delivery of the incident, by company."""
    with db.session() as session:
        inc = get_incident(session, incident)
        deliveries = list(session.scalars(select(NoticeDelivery).where(NoticeDelivery.incident_id == inc.id)))
        names = company_names(session, {row.company_id for row in deliveries})
        rows = sorted(
            ((row, names[row.company_id]) for row in deliveries),
            key=lambda pair: (pair[1].name, pair[1].public_id),
        )
        return [
            {
                "company": company.public_id,
                "company_name": company.name,
                "recipient": row.recipient,
                "status": row.status,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "message_id": row.message_id,
                "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            }
            for row, company in rows
        ]


def _ensure_rows(db: Database, incident: str, drafts: list[NoticeDraft]) -> dict[str, tuple[int, str]]:
    """A ``pending`` row per draft unless one exists (insert-if-absent, safe against a concurrent run)."""
    with db.session() as session:
        inc = get_incident(session, incident)
        contacts = company_contacts(session, [d.company.id for d in drafts])
        companies = {public_id: contact.id for public_id, contact in contacts.items()}
        values = [
            {
                "incident_id": inc.id,
                "company_id": companies[d.company.id],
                "recipient": _logged(d.recipient),
                "message_id": d.message_id,
                "status": NoticeStatus.PENDING.value,
                "attempts": 0,
                "created_at": utcnow(),
            }
            for d in drafts
            if d.company.id in companies
        ]
        if values:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(NoticeDelivery).values(values)
            session.execute(stmt.on_conflict_do_nothing(index_elements=["incident_id", "company_id"]))
        by_id = {v: k for k, v in companies.items()}
        rows = session.execute(
            select(NoticeDelivery.id, NoticeDelivery.company_id, NoticeDelivery.status).where(
                NoticeDelivery.incident_id == inc.id
            )
        ).all()
        return {
            by_id[company_id]: (row_id, status) for row_id, company_id, status in rows if company_id in by_id
        }


def _current_recipient(db: Database, draft: NoticeDraft) -> str | None:
    """The recipients read at send time (so fixing an address and re-running delivers a failed notice),
    as one ``To`` value: the company's address, else its affected stores' (``notice_recipients``)."""
    stores = [s["id"] for s in draft.company.stores]
    with db.session() as session:
        found = company_contacts(session, [draft.company.id]).get(draft.company.id)
        company = found.email if found else None
        emails = {public_id: contact.email for public_id, contact in store_contacts(session, stores).items()}
    return ", ".join(notice_recipients(company, [emails.get(s) for s in stores])) or None


def _logged(recipient: str | None) -> str | None:
    """The recipients as kept in the log column (320 characters; a long store list is cut, marked)."""
    if recipient is None or len(recipient) <= 320:
        return recipient
    return recipient[:319] + "…"


def _claim(db: Database, row_id: int, recipient: str | None) -> bool:
    with db.session() as session:
        result = session.execute(
            update(NoticeDelivery)
            .where(
                NoticeDelivery.id == row_id,
                NoticeDelivery.status.in_((NoticeStatus.PENDING.value, NoticeStatus.FAILED.value)),
            )
            .values(
                status=NoticeStatus.SENDING.value,
                attempts=NoticeDelivery.attempts + 1,
                recipient=_logged(recipient),
            )
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def _finish(db: Database, row_id: int, *, error: str | None, sent: bool = False) -> None:
    with db.session() as session:
        session.execute(
            update(NoticeDelivery)
            .where(NoticeDelivery.id == row_id)
            .values(
                status=(NoticeStatus.SENT if sent else NoticeStatus.FAILED).value,
                last_error=error,
                sent_at=utcnow() if sent else None,
            )
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"recipient {a} refused: {c} {_text(m)}" for a, (c, m) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
