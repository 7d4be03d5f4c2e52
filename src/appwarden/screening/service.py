"""Screening operations for vendors: answer the questionnaire, attach evidence, submit for review.

A version is submitted only when its declarations (``marketplace.versions``), the questionnaire sections
and the evidence its tier requires are all there; then it is frozen for review.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.errors import Conflict, InvalidInput
from appwarden.events.service import EventTag, record
from appwarden.marketplace import standing, versions
from appwarden.marketplace.standing import AppStanding
from appwarden.marketplace.tiers import tier_of
from appwarden.marketplace.versions import VersionView
from appwarden.marketplace.vocabulary import LifecycleState, VersionStatus
from appwarden.screening import evidence
from appwarden.screening.models import EvidenceFile, QuestionnaireAnswer
from appwarden.screening.questionnaire import BY_KEY, missing_answers, missing_evidence, required_questions
from appwarden.screening.vocabulary import EvidenceKind

MIN_ANSWER = 10  # characters


def version_tier(version: VersionView) -> int:
    return tier_of(versions.requested_scopes(version)).tier


def answers_of(session: Session, version: VersionView) -> dict[str, QuestionnaireAnswer]:
    query = select(QuestionnaireAnswer).where(QuestionnaireAnswer.app_version_id == version.id)
    return {a.question: a for a in session.scalars(query)}


def evidence_of(session: Session, version: VersionView) -> list[EvidenceFile]:
    query = select(EvidenceFile).where(EvidenceFile.app_version_id == version.id).order_by(EvidenceFile.id)
    return list(session.scalars(query))


def _draft(version: VersionView) -> None:
    if version.status != VersionStatus.DRAFT:
        raise Conflict(
            f"version {version.number} is {version.status}: only a draft changes", code="version_frozen"
        )


def answer_questions(
    session: Session, version: VersionView, answers: dict[str, dict[str, Any]], *, now: datetime
) -> dict[str, QuestionnaireAnswer]:
    """Set answers (``{key: {"answer", "date"?}}``); unknown keys, short answers or a missing or future
    date for a dated question are 422s, and nothing is written then."""
    _draft(version)
    unknown = sorted(k for k in answers if k not in BY_KEY)
    if unknown:
        raise InvalidInput(
            f"unknown questions: {', '.join(unknown)}", code="unknown_question", questions=unknown
        )
    clean: dict[str, tuple[str, date | None]] = {}
    for key, item in answers.items():
        text = str(item.get("answer", "")).strip()
        if len(text) < MIN_ANSWER:
            raise InvalidInput(
                f"answer to {key!r} needs at least {MIN_ANSWER} characters", code="answer_too_short"
            )
        dated = item.get("date")
        if BY_KEY[key].dated:
            if not isinstance(dated, date):
                raise InvalidInput(f"{key!r} needs the assessment's date (YYYY-MM-DD)", code="date_required")
            if dated > now.date():
                raise InvalidInput(f"{key!r}: the date {dated} is in the future", code="date_in_future")
        clean[key] = (text, dated if BY_KEY[key].dated else None)
    existing = answers_of(session, version)
    for key, (text, dated) in clean.items():
        row = existing.get(key) or QuestionnaireAnswer(app_version_id=version.id, question=key)
        row.answer, row.dated, row.answered_at = text, dated, now
        session.add(row)
        existing[key] = row
    session.flush()
    return existing


def attach_evidence(
    session: Session,
    app: AppStanding,
    version: VersionView,
    *,
    kind: str,
    filename: str,
    content: bytes,
    data_dir: Path,
    max_bytes: int,
    actor: str,
) -> EvidenceFile:
    """Check ``content`` by its bytes, store it by hash, and record it for the version."""
    _draft(version)
    try:
        evidence_kind = EvidenceKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in EvidenceKind)
        raise InvalidInput(f"evidence kind must be one of {allowed}", code="invalid_evidence_kind") from None
    name = evidence.clean_filename(filename)
    media_type, digest = evidence.check(content, max_bytes=max_bytes)
    evidence.store(data_dir, digest, content)
    row = EvidenceFile(
        app_version_id=version.id,
        kind=evidence_kind.value,
        filename=name,
        media_type=media_type,
        size=len(content),
        sha256=digest,
    )
    session.add(row)
    session.flush()
    record(
        session,
        EventTag.EVIDENCE_ATTACHED,
        actor=actor,
        app_id=app.id,
        version=version.number,
        evidence=row.public_id,
        kind=row.kind,
        sha256=digest,
    )
    return row


def missing_for_submission(session: Session, version: VersionView) -> list[str]:
    """Everything still missing before the version can be submitted (empty: ready)."""
    tier = version_tier(version)
    missing = versions.missing_declarations(version)
    missing += [f"questionnaire.{k}" for k in missing_answers(tier, set(answers_of(session, version)))]
    missing += [
        f"evidence.{g}" for g in missing_evidence(tier, {e.kind for e in evidence_of(session, version)})
    ]
    return missing


def submit(
    session: Session, app: AppStanding, version: VersionView, *, actor: str, now: datetime
) -> VersionView:
    """Submit a complete draft version for review (422 ``incomplete`` lists what is missing); its new
    view."""
    _draft(version)
    missing = missing_for_submission(session, version)
    if missing:
        raise InvalidInput(
            f"the version is incomplete: {', '.join(missing)}", code="incomplete", missing=missing
        )
    if app.listing_state == LifecycleState.DELISTED:
        raise Conflict(f"app {app.slug!r} is delisted", code="app_delisted")
    submitted = versions.mark_submitted(session, version.id, actor=actor, now=now)
    if app.listing_state == LifecycleState.DRAFT:
        # A first version moves the app; a later one (a scope increase) leaves it serving the old one.
        standing.transition(
            session,
            app.id,
            LifecycleState.SUBMITTED,
            actor=actor,
            reason=f"version {version.number}",
            now=now,
        )
    return submitted


def questionnaire_view(session: Session, version: VersionView) -> list[dict[str, Any]]:
    """Every question the version's tier requires, with the answer given (or None)."""
    given = answers_of(session, version)
    out = []
    for q in required_questions(version_tier(version)):
        a = given.get(q.key)
        out.append(
            {
                "question": q.key,
                "section": q.section.value,
                "text": q.text,
                "answer": a.answer if a else None,
                "date": a.dated.isoformat() if a and a.dated else None,
            }
        )
    return out


def evidence_view(session: Session, version: VersionView) -> list[dict[str, Any]]:
    return [
        {
            "id": e.public_id,
            "kind": e.kind,
            "filename": e.filename,
            "media_type": e.media_type,
            "size": e.size,
            "sha256": e.sha256,
            "uploaded_at": e.uploaded_at.isoformat(),
        }
        for e in evidence_of(session, version)
    ]


def new_version(session: Session, app: AppStanding, *, actor: str) -> VersionView:
    """A new draft version copying the latest one's declarations, answers and evidence (the vendor
    changes what differs, e.g. asks for more scopes); it needs a new review."""
    previous = versions.version_view(session, app)
    version = versions.open_version(session, app.id, actor=actor)
    for a in answers_of(session, previous).values():
        session.add(
            QuestionnaireAnswer(
                app_version_id=version.id,
                question=a.question,
                answer=a.answer,
                dated=a.dated,
                answered_at=a.answered_at,
            )
        )
    for e in evidence_of(session, previous):
        session.add(
            EvidenceFile(
                app_version_id=version.id,
                kind=e.kind,
                filename=e.filename,
                media_type=e.media_type,
                size=e.size,
                sha256=e.sha256,
                uploaded_at=e.uploaded_at,
            )
        )
    session.flush()
    return version
