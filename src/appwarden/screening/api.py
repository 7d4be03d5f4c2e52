"""Screening routes. Vendor (``/vendor``, vendor key): status, questionnaire, evidence, submit. Reviewers
(``/admin/reviews``): the queue and sheets (admin or staff key), decisions (a staff key only: the admin key
cannot tell two reviewers apart). Audits (``/admin/audits``, admin key)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.db.session import Database
from appwarden.errors import Unauthenticated
from appwarden.marketplace import standing, versions
from appwarden.marketplace.standing import AppStanding
from appwarden.marketplace.vendor_api import OWN_APP, VENDOR_AUTH, VendorDep
from appwarden.marketplace.vendors import VendorProfile, profile_of
from appwarden.marketplace.vocabulary import VersionStatus
from appwarden.platform.staff import StaffMember, staff_by_key
from appwarden.screening import audits, review, service
from appwarden.screening.vocabulary import Outcome
from appwarden.web.deps import AdminDep, DatabaseDep, SettingsDep, bearer_token, check_admin_key
from appwarden.web.problems import ADMIN_AUTH, problem_responses
from appwarden.web.text import Body

vendor_router = APIRouter(prefix="/vendor", tags=["vendor"], responses=problem_responses(VENDOR_AUTH))
reviews_router = APIRouter(prefix="/admin/reviews", tags=["admin: reviews"])
audits_router = APIRouter(
    prefix="/admin/audits", tags=["admin: audits"], responses=problem_responses(ADMIN_AUTH)
)
STAFF_AUTH = {401: "`invalid_reviewer_key`: decisions need a reviewer's own key (`Bearer sk_…`)."}
FROZEN = {409: "`version_frozen`: only a draft version changes."}


def check_staff_key(request: Request) -> None:
    """401 ``invalid_reviewer_key`` unless the request carries a staff member's key."""
    db: Database = request.app.state.db
    with db.sessionmaker() as session:
        if staff_by_key(session, bearer_token(request) or "") is None:
            raise Unauthenticated(
                "a reviewer's own API key is required (Bearer sk_...)", code="invalid_reviewer_key"
            )


async def require_staff(request: Request) -> StaffMember:
    db: Database = request.app.state.db
    with db.sessionmaker() as session:
        member = staff_by_key(session, bearer_token(request) or "")
    if member is None:
        raise Unauthenticated(
            "a reviewer's own API key is required (Bearer sk_...)", code="invalid_reviewer_key"
        )
    return member


async def require_admin_or_staff(request: Request) -> str:
    try:
        check_admin_key(request)
        return "admin-api"
    except Unauthenticated:
        return (await require_staff(request)).username


StaffDep = Annotated[StaffMember, Depends(require_staff)]
ReaderDep = Annotated[str, Depends(require_admin_or_staff)]


class Answer(Body):
    answer: str = Field(max_length=5000)
    date: dt.date | None = None


class Questionnaire(Body):
    answers: dict[str, Answer] = Field(min_length=1, max_length=30)


class ScopeCheck(Body):
    scope: str = Field(max_length=80)
    verdict: Literal["approved", "weakened", "refused"]
    mode: Literal["raw", "masked", "token"] | None = None
    reason: str = Field(default="", max_length=2000)


class AnswerCheck(Body):
    question: str = Field(max_length=64)
    ok: bool
    note: str = Field(default="", max_length=2000)


class Decision(Body):
    version: int | None = Field(default=None, ge=1)
    scopes: list[ScopeCheck] = Field(max_length=40)
    answers: list[AnswerCheck] = Field(max_length=30)
    reason: str = Field(default="", max_length=2000)


class Schedule(Body):
    due_at: dt.datetime | None = Field(description="When the audit is due (with a zone); null: at once.")


class AuditPass(Body):
    notes: str = Field(min_length=1, max_length=2000)


def _vendor(session: Session, vendor_id: int) -> VendorProfile:
    vendor = profile_of(session, vendor_id)
    assert vendor is not None
    return vendor


def vendor_view(session: Session, app: AppStanding, vendor: VendorProfile) -> dict[str, Any]:
    """The vendor's view: the app (state, tier and reasons), the latest version, what is missing, the
    review outcome and the next audit, as they are now."""
    version = versions.version_view(session, app)
    audit = audits.open_audit(session, app)
    return {
        "app": standing.summary(session, app.id, vendor),
        "version": versions.version_summary(version),
        "missing": service.missing_for_submission(session, version)
        if version.status == VersionStatus.DRAFT
        else [],
        "questionnaire": service.questionnaire_view(session, version),
        "evidence": service.evidence_view(session, version),
        "review": review.outcome_for_vendor(session, version),
        "audit_due_at": audit.due_at.isoformat() if audit and audit.due_at else None,
    }


@vendor_router.get("/apps/{slug}", responses=problem_responses(OWN_APP))
def app_status(slug: str, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, Any]:
    """Status, tier and reasons, what is missing before submission, the review outcome, the next audit."""
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        return vendor_view(session, standing.of_vendor(session, vendor, slug), vendor)


@vendor_router.post(
    "/apps/{slug}/versions",
    status_code=201,
    responses=problem_responses(OWN_APP | {409: "`version_open`: the latest version is not decided yet."}),
)
def new_version(slug: str, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, Any]:
    """A new draft version (a copy of the latest) — e.g. to ask for more scopes; it needs a new review."""
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        app = standing.of_vendor(session, vendor, slug)
        return versions.version_summary(service.new_version(session, app, actor=vendor.name))


@vendor_router.put("/apps/{slug}/questionnaire", responses=problem_responses(OWN_APP | FROZEN))
def answer(slug: str, body: Questionnaire, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, Any]:
    """Answer questions by key (``GET /vendor/apps/{slug}`` lists those the tier requires)."""
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        app = standing.of_vendor(session, vendor, slug)
        version = versions.version_view(session, app)
        given = {k: v.model_dump() for k, v in body.answers.items()}
        service.answer_questions(session, version, given, now=utcnow())
        return vendor_view(session, app, vendor)


@vendor_router.post(
    "/evidence",
    status_code=201,
    responses=problem_responses(
        OWN_APP
        | FROZEN
        | {413: "`payload_too_large`.", 415: "`unsupported_media_type`: not PDF, PNG, JPEG or text."}
    ),
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def attach(
    request: Request,
    vendor_id: VendorDep,
    db: DatabaseDep,
    settings: SettingsDep,
    app: Annotated[str, Query(max_length=64)],
    kind: Annotated[str, Query(max_length=30)],
    filename: Annotated[str, Query(max_length=200)],
) -> dict[str, Any]:
    """Attach an evidence file to the app's draft version: the raw bytes as the body; judged by content."""
    content = await request.body()
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        owned = standing.of_vendor(session, vendor, app)
        version = versions.version_view(session, owned)
        saved = service.attach_evidence(
            session,
            owned,
            version,
            kind=kind,
            filename=filename,
            content=content,
            data_dir=settings.ensure_data_dir(),
            max_bytes=settings.evidence_max_bytes,
            actor=vendor.name,
        )
        return {
            "id": saved.public_id,
            "kind": saved.kind,
            "media_type": saved.media_type,
            "size": saved.size,
            "sha256": saved.sha256,
        }


@vendor_router.post(
    "/apps/{slug}/submit",
    responses=problem_responses(OWN_APP | FROZEN | {422: "`incomplete`: `missing` lists what is missing."}),
)
def submit(slug: str, vendor_id: VendorDep, db: DatabaseDep) -> dict[str, Any]:
    """Submit the draft version for review; it is frozen from now on."""
    with db.session() as session:
        vendor = _vendor(session, vendor_id)
        app = standing.of_vendor(session, vendor, slug)
        service.submit(session, app, versions.version_view(session, app), actor=vendor.name, now=utcnow())
        return vendor_view(session, app, vendor)


@reviews_router.get("", responses=problem_responses(ADMIN_AUTH))
def review_queue(actor: ReaderDep, db: DatabaseDep) -> list[dict[str, Any]]:
    """Versions waiting for a decision."""
    with db.session() as session:
        return review.queue(session)


@reviews_router.get(
    "/{slug}", responses=problem_responses(ADMIN_AUTH | {404: "`app_not_found`, `version_not_found`."})
)
def review_show(slug: str, actor: ReaderDep, db: DatabaseDep, version: int | None = None) -> dict[str, Any]:
    """The review sheet of the version under review (or ``version``)."""
    with db.session() as session:
        app = standing.find(session, slug)
        return review.sheet(session, app, review.review_version(session, app, version))


def _decide(
    slug: str, body: Decision, reviewer: StaffMember, db: Database, outcome: Outcome
) -> dict[str, Any]:
    with db.session() as session:
        app = standing.find(session, slug)
        version = review.review_version(session, app, body.version)
        return review.decide(
            session,
            app,
            version,
            reviewer=reviewer,
            outcome=outcome,
            scopes=[s.model_dump() for s in body.scopes],
            answers=[a.model_dump() for a in body.answers],
            reason=body.reason,
            now=utcnow(),
        )


DECISION_ERRORS = STAFF_AUTH | {
    403: "`reviewer_is_vendor`, `same_reviewer`.",
    404: "`app_not_found`, `version_not_found`.",
    409: "`version_decided`: not under review; `listing_blocked`: this approval would list the app, but the "
    "vendor's erasure endpoint has not passed the check (`reasons` says why; nothing is recorded).",
    422: "`checklist_incomplete`, `not_weaker`, `reason_required`, `answers_not_accepted`, `nothing_approved`"
    ".",
}


@reviews_router.post("/{slug}/approve", responses=problem_responses(DECISION_ERRORS))
def approve(slug: str, body: Decision, reviewer: StaffDep, db: DatabaseDep) -> dict[str, Any]:
    """Approve with the full checklist: every requested scope and every required answer."""
    return _decide(slug, body, reviewer, db, Outcome.APPROVE)


@reviews_router.post("/{slug}/reject", responses=problem_responses(DECISION_ERRORS))
def reject(slug: str, body: Decision, reviewer: StaffDep, db: DatabaseDep) -> dict[str, Any]:
    """Reject (with a reason and the checklist); the version is frozen as rejected."""
    return _decide(slug, body, reviewer, db, Outcome.REJECT)


@audits_router.get("")
def audits_due(actor: AdminDep, db: DatabaseDep) -> list[dict[str, Any]]:
    """Open audits, soonest first."""
    with db.session() as session:
        return audits.due(session, utcnow())


@audits_router.post("/{slug}/schedule", responses=problem_responses({404: "`app_not_found`."}))
def schedule(slug: str, body: Schedule, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """Set when the app's open audit is due (null: at once)."""
    with db.session() as session:
        app = standing.find(session, slug)
        audit = audits.schedule(session, app, body.due_at, actor=actor, now=utcnow())
        return {
            "app": app.slug,
            "tier": audit.tier,
            "due_at": audit.due_at.isoformat() if audit.due_at else None,
        }


@audits_router.post(
    "/{slug}/pass", responses=problem_responses({404: "`app_not_found`.", 409: "`invalid_transition`."})
)
def pass_audit(slug: str, body: AuditPass, actor: AdminDep, db: DatabaseDep) -> dict[str, Any]:
    """The audit passed: the next is scheduled by tier; a restricted app is relisted."""
    with db.session() as session:
        app = standing.find(session, slug)
        nxt = audits.pass_audit(session, app, actor=actor, notes=body.notes, now=utcnow())
        return standing.summary(session, app.id) | {
            "next_audit_due_at": nxt.due_at.isoformat() if nxt and nxt.due_at else None
        }
