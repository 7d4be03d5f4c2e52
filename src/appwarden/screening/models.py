"""Screening tables: questionnaire answers and evidence per app version, review decisions, audits."""

from __future__ import annotations

from datetime import date, datetime
from functools import partial

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from appwarden.db.base import Base, UTCDateTime, public_id, utcnow
from appwarden.screening.vocabulary import AuditStatus


class QuestionnaireAnswer(Base):
    """A vendor's answer to one security question, for one app version."""

    __tablename__ = "questionnaire_answers"
    __table_args__ = (
        UniqueConstraint("app_version_id", "question", name="uq_questionnaire_answers_version_q"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_version_id: Mapped[int] = mapped_column(ForeignKey("app_versions.id"), index=True)
    question: Mapped[str] = mapped_column(String(64))
    answer: Mapped[str] = mapped_column(Text)
    dated: Mapped[date | None] = mapped_column(Date)  # the assessment's date, where the question asks one
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EvidenceFile(Base):
    """An evidence file's metadata; the bytes live under the data dir, named by their SHA-256."""

    __tablename__ = "evidence_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, default=partial(public_id, "evd"))
    app_version_id: Mapped[int] = mapped_column(ForeignKey("app_versions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReviewDecision(Base):
    """One reviewer's decision on one app version, with its checklist. Never changed once written.

    ``scopes``: ``[{"scope", "verdict", "mode", "reason"}]``; ``answers``: ``[{"question", "ok", "note"}]``.
    """

    __tablename__ = "review_decisions"
    __table_args__ = (
        UniqueConstraint("app_version_id", "reviewer_id", name="uq_review_decisions_version_reviewer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_version_id: Mapped[int] = mapped_column(ForeignKey("app_versions.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(10))
    scopes: Mapped[list] = mapped_column(default=list)
    answers: Mapped[list] = mapped_column(default=list)
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Audit(Base):
    """An app's (re-)audit: due by ``due_at`` (None: due at once, no date set yet — grandfathered)."""

    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    tier: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default=AuditStatus.OPEN.value)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminded_30_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminded_7_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lapsed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    companies_told_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    passed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    passed_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
