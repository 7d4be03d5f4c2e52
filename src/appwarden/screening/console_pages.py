"""Screening as the console's vendor and reviewer pages use it: the vendor's status of one app, answers,
evidence and submission on its own app (looked up within the vendor), and a reviewer's decision and
evidence download. The rules stay in ``screening.review`` and ``screening.rules``; here each change
carries the signed-in person's username as ``actor``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from appwarden.errors import NotFound
from appwarden.events.service import EventTag, record
from appwarden.marketplace import standing, versions
from appwarden.marketplace.vendors import VendorProfile
from appwarden.platform.staff import staff_by_name
from appwarden.screening import review, service
from appwarden.screening.api import vendor_view
from appwarden.screening.vocabulary import Outcome


@dataclass(frozen=True, slots=True)
class EvidenceDownload:
    """One evidence file's bytes as stored (by hash) and how to name it."""

    filename: str
    media_type: str
    sha256: str
    content: bytes


def vendor_status(session: Session, vendor: VendorProfile, slug: str) -> dict[str, Any]:
    """The vendor's view of its app ``slug`` (as ``GET /vendor/apps/{slug}``); 404 for another's."""
    return vendor_view(session, standing.of_vendor(session, vendor, slug), vendor)


def answer(
    session: Session,
    vendor: VendorProfile,
    slug: str,
    answers: dict[str, dict[str, Any]],
    *,
    actor: str,
    now: datetime,
) -> None:
    """Set answers on the draft version of the vendor's app (``service.answer_questions``)."""
    app = standing.of_vendor(session, vendor, slug)
    version = versions.version_view(session, app)
    service.answer_questions(session, version, answers, now=now)
    record(
        session,
        EventTag.APP_VERSION_DECLARED,
        actor=actor,
        app_id=app.id,
        version=version.number,
        what="questionnaire",
        questions=sorted(answers),
    )


def attach(
    session: Session,
    vendor: VendorProfile,
    slug: str,
    *,
    kind: str,
    filename: str,
    content: bytes,
    data_dir: Path,
    max_bytes: int,
    actor: str,
) -> str:
    """Attach an evidence file to the draft version (checked by its bytes, capped); its SHA-256."""
    app = standing.of_vendor(session, vendor, slug)
    saved = service.attach_evidence(
        session,
        app,
        versions.version_view(session, app),
        kind=kind,
        filename=filename,
        content=content,
        data_dir=data_dir,
        max_bytes=max_bytes,
        actor=actor,
    )
    return saved.sha256


def submit(session: Session, vendor: VendorProfile, slug: str, *, actor: str, now: datetime) -> None:
    """Submit the draft version for review (422 ``incomplete`` lists what is missing)."""
    app = standing.of_vendor(session, vendor, slug)
    service.submit(session, app, versions.version_view(session, app), actor=actor, now=now)


def decide_as(
    session: Session,
    slug: str,
    *,
    username: str,
    outcome: Outcome,
    version: int | None,
    scopes: list[dict[str, Any]],
    answers: list[dict[str, Any]],
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """One reviewer's decision, by the staff member signed in as ``username``: ``review.decide`` with
    every rule it enforces (a second sign-off by another person, no vendor-affiliated reviewer)."""
    app = standing.find(session, slug)
    return review.decide(
        session,
        app,
        review.review_version(session, app, version),
        reviewer=staff_by_name(session, username),
        outcome=outcome,
        scopes=scopes,
        answers=answers,
        reason=reason,
        now=now,
    )


def evidence_download(
    session: Session, slug: str, version: int | None, evidence_id: str, data_dir: Path
) -> EvidenceDownload:
    """An evidence file of the app's version under review (or ``version``); 404 ``evidence_not_found``
    for any id not attached to it."""
    app = standing.find(session, slug)
    found = next(
        (
            e
            for e in service.evidence_of(session, review.review_version(session, app, version))
            if e.public_id == evidence_id
        ),
        None,
    )
    path = data_dir / "evidence" / found.sha256[:2] / found.sha256 if found else None
    if found is None or path is None or not path.is_file():
        raise NotFound(f"no evidence {evidence_id!r} on this version", code="evidence_not_found")
    return EvidenceDownload(found.filename, found.media_type, found.sha256, path.read_bytes())
