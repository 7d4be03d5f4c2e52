"""Incident tables: the incident, the apps it concerns, its timeline and notice deliveries."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, public_id, utcnow
from appwarden.incident.vocabulary import IncidentStatus, NoticeStatus


class Incident(Base):
    """A security incident about one or more apps. ``known``/``unknown`` are the editable fact lists
    (わかっていること / わかっていないこと)."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "inc"))
    title: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=IncidentStatus.OPEN.value)
    opened_by: Mapped[str] = mapped_column(String(120))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    aware_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)  # APPI deadlines run from here
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unauthorized_access: Mapped[bool] = mapped_column(Boolean, default=True)
    known: Mapped[list] = mapped_column(default=list)
    unknown: Mapped[list] = mapped_column(default=list)


class IncidentApp(Base):
    """An app an incident concerns (its deliveries make up the blast radius)."""

    __tablename__ = "incident_apps"
    __table_args__ = (UniqueConstraint("incident_id", "app_id", name="uq_incident_apps_incident_app"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    killed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TimelineEntry(Base):
    """Who did what when: kill switch, counts, notices, reports, attribution results, free text."""

    __tablename__ = "incident_timeline"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(30))  # a TimelineKind
    text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(default=dict)


class NoticeDelivery(Base):
    """One notice to one affected company: written once, sent at most once, failures retried."""

    __tablename__ = "notice_deliveries"
    __table_args__ = (
        UniqueConstraint("incident_id", "company_id", name="uq_notice_deliveries_incident_company"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    recipient: Mapped[str | None] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=NoticeStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
