"""Review: the queue, one version's review sheet, and decisions (frozen per version).

A decision is one reviewer's checklist — every requested scope (approved, weakened with a reason, or
refused with a reason) and every required questionnaire answer (accepted or not, with a note). Tier 3
needs two approvals by different reviewers, neither the vendor's; the approved scopes are then the
weakest of the two per scope. A rejection by any reviewer ends the version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appwarden.db.base import utcnow
from appwarden.errors import Conflict, InvalidInput
from appwarden.events.service import EventTag, record
from appwarden.hooks import Question
from appwarden.ledger.usage import unused_scopes
from appwarden.marketplace import standing, versions
from appwarden.marketplace.lifecycle import PRE_LISTING
from appwarden.marketplace.standing import AppStanding
from appwarden.marketplace.vendors import profile_of
from appwarden.marketplace.versions import VersionView
from appwarden.marketplace.vocabulary import LifecycleState, VersionStatus
from appwarden.platform.staff import StaffMember, staff_by_ids
from appwarden.screening import audits
from appwarden.screening.models import ReviewDecision
from appwarden.screening.questionnaire import missing_evidence, required_questions, reviewers_required
from appwarden.screening.rules import (
    check_reviewer,
    combine,
    complete_checklist,
    scope_decision,
)
from appwarden.screening.service import (
    answers_of,
    evidence_of,
    evidence_view,
    questionnaire_view,
    version_tier,
)
from appwarden.screening.vocabulary import Outcome

UNDER_REVIEW = versions.AWAITING_REVIEW

# Whether an app may be listed, asked of the packages above (answered by the vendor obligations: the
# vendor's erasure endpoint passed the review's check). Each answer is (ready, the reason why not).
listing_gate: Question[[Session, int], tuple[bool, str]] = Question("listing gate")


def decisions_of(session: Session, version: VersionView) -> list[ReviewDecision]:
    query = (
        select(ReviewDecision).where(ReviewDecision.app_version_id == version.id).order_by(ReviewDecision.id)
    )
    return list(session.scalars(query))


def queue(session: Session) -> list[dict[str, Any]]:
    """Every version waiting for a decision, oldest submission first."""
    rows = []
    for slug, version in versions.awaiting_review(session):
        tier = version_tier(version)
        rows.append(
            {
                "app": slug,
                "version": version.number,
                "status": version.status,
                "tier": tier,
                "reviewers_required": reviewers_required(tier),
                "approvals": sum(d.outcome == Outcome.APPROVE for d in decisions_of(session, version)),
                "submitted_at": version.submitted_at.isoformat() if version.submitted_at else None,
            }
        )
    return sorted(rows, key=lambda r: r["submitted_at"] or "")


def review_version(session: Session, app: AppStanding, number: int | None) -> VersionView:
    """The version under review (or ``number``), else the latest; 404 ``version_not_found``."""
    if number is not None:
        return versions.version_view(session, app, number)
    version = versions.under_review(session, app.id)
    return version if version is not None else versions.version_view(session, app)


def sheet(
    session: Session, app: AppStanding, version: VersionView, *, now: datetime | None = None
) -> dict[str, Any]:
    """The review sheet: the app (tier, reasons), the version, answers, evidence, decisions so far, and
    the scopes the app holds but has not used in 90 days (from the ledger): candidates to drop. Both
    are read as they are now (``app`` and ``version`` say which)."""
    version = versions.version_by_id(session, version.id)
    tier = version_tier(version)
    reviewers = staff_by_ids(session, [d.reviewer_id for d in decisions_of(session, version)])
    vendor = profile_of(session, app.vendor_id) if app.vendor_id else None
    return {
        "app": standing.summary(session, app.id, vendor),
        "version": versions.version_summary(version),
        "reviewers_required": reviewers_required(tier),
        "questionnaire": questionnaire_view(session, version),
        "evidence": evidence_view(session, version),
        "evidence_missing": missing_evidence(tier, {e.kind for e in evidence_of(session, version)}),
        "unused_scopes": unused_scopes(session, app.id, now=now or utcnow()),
        "decisions": [
            {
                "reviewer": reviewers[d.reviewer_id].username if d.reviewer_id in reviewers else None,
                "outcome": d.outcome,
                "scopes": d.scopes,
                "answers": d.answers,
                "reason": d.reason,
                "decided_at": d.decided_at.isoformat(),
            }
            for d in decisions_of(session, version)
        ],
    }


def default_checklist(
    session: Session, version: VersionView
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every scope approved as asked and every required answer accepted: the CLI's starting point."""
    scopes = [
        {"scope": s, "verdict": "approved", "mode": None, "reason": ""}
        for s in versions.requested_scopes(version)
    ]
    answers = [{"question": q.key, "ok": True, "note": ""} for q in required_questions(version_tier(version))]
    return scopes, answers


def decide(
    session: Session,
    app: AppStanding,
    version: VersionView,
    *,
    reviewer: StaffMember,
    outcome: Outcome,
    scopes: list[dict[str, Any]],
    answers: list[dict[str, Any]],
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """Record one reviewer's decision; on the last approval needed, put the version in force and list
    the app; on a rejection, end the version. Returns the review sheet."""
    if version.status not in UNDER_REVIEW:
        raise Conflict(
            f"version {version.number} is {version.status}, not under review", code="version_decided"
        )
    vendor = profile_of(session, app.vendor_id) if app.vendor_id else None
    earlier = decisions_of(session, version)
    check_reviewer(
        reviewer,
        vendor_public_id=vendor.public_id if vendor else None,
        vendor_email=vendor.contact_email if vendor else None,
        earlier_reviewer_ids=[d.reviewer_id for d in earlier],
    )
    requested = versions.requested_scopes(version)
    checked = complete_checklist(
        requested,
        [scope_decision(s["scope"], s["verdict"], s.get("mode"), s.get("reason", "")) for s in scopes],
    )
    checked_answers = _check_answers(session, version, answers)
    if outcome == Outcome.REJECT and not reason.strip():
        raise InvalidInput("a rejection needs a reason", code="reason_required")
    if outcome == Outcome.APPROVE:
        not_ok = [a["question"] for a in checked_answers if not a["ok"]]
        if not_ok:
            raise InvalidInput(
                f"answers not accepted: {', '.join(not_ok)}; reject the version instead",
                code="answers_not_accepted",
                questions=not_ok,
            )
        if not any(d.approved for d in checked):
            raise InvalidInput("every scope refused: reject the version instead", code="nothing_approved")
    if outcome == Outcome.APPROVE:
        _check_listing_gate(session, app, version, earlier)
    if version.status == VersionStatus.SUBMITTED:
        version = versions.mark_in_review(session, version.id)
        if app.listing_state == LifecycleState.SUBMITTED:
            app = standing.transition(
                session,
                app.id,
                LifecycleState.IN_REVIEW,
                actor=reviewer.username,
                reason=f"review of version {version.number}",
                now=now,
            )
    session.add(
        ReviewDecision(
            app_version_id=version.id,
            reviewer_id=reviewer.id,
            outcome=outcome.value,
            scopes=[d.to_dict() for d in checked],
            answers=checked_answers,
            reason=reason.strip(),
            decided_at=now,
        )
    )
    record(
        session,
        EventTag.REVIEW_DECIDED,
        actor=reviewer.username,
        app_id=app.id,
        version=version.number,
        outcome=outcome.value,
        reason=reason.strip(),
    )
    if outcome == Outcome.REJECT:
        version = versions.mark_rejected(session, version.id, now=now)
        if app.listing_state in PRE_LISTING:
            app = standing.transition(
                session, app.id, LifecycleState.DRAFT, actor=reviewer.username, reason=reason, now=now
            )
    elif _completes_review(version, earlier):
        approvals = [d for d in earlier if d.outcome == Outcome.APPROVE]
        stored = [
            [scope_decision(s["scope"], s["verdict"], s["mode"], s["reason"]) for s in d.scopes]
            for d in approvals
        ]
        approved = combine([*stored, checked])
        standing.put_in_force(session, version.id, approved, actor=reviewer.username, now=now)
        app = standing.end_grandfathering(session, app.id)
        if app.listing_state in PRE_LISTING:
            app = standing.transition(
                session,
                app.id,
                LifecycleState.LISTED,
                actor=reviewer.username,
                reason=f"version {version.number} approved",
                now=now,
            )
        audits.schedule_next(session, app, tier=version_tier(version), now=now, actor=reviewer.username)
    session.flush()
    return sheet(session, app, version)


def _completes_review(version: VersionView, earlier: list[ReviewDecision]) -> bool:
    """Whether one more approval is the last the version's tier needs (it then goes in force)."""
    approvals = sum(1 for d in earlier if d.outcome == Outcome.APPROVE)
    return approvals + 1 >= reviewers_required(version_tier(version))


def _check_listing_gate(
    session: Session, app: AppStanding, version: VersionView, earlier: list[ReviewDecision]
) -> None:
    """Refuse, before anything is written, the approval that would list an app the platform is not ready
    to list (its vendor's erasure endpoint has not passed the check): 409 ``listing_blocked`` with the
    reasons. Relisting a restricted app is not a review and is not gated here."""
    if app.listing_state not in PRE_LISTING or not _completes_review(version, earlier):
        return
    reasons = [reason for ready, reason in listing_gate(session, app.id) if not ready]
    if reasons:
        raise Conflict(
            f"{app.slug} cannot be listed yet: {'; '.join(reasons)}", code="listing_blocked", reasons=reasons
        )


def _check_answers(
    session: Session, version: VersionView, answers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    required = [q.key for q in required_questions(version_tier(version))]
    given = {str(a["question"]): a for a in answers}
    missing = [k for k in required if k not in given]
    extra = sorted(set(given) - set(required))
    if missing or extra:
        raise InvalidInput(
            "every required answer needs a check"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not required: {', '.join(extra)}" if extra else ""),
            code="checklist_incomplete",
            missing=missing,
        )
    if set(answers_of(session, version)) < set(required):
        raise Conflict("the version lacks required answers", code="incomplete")
    return [
        {"question": k, "ok": bool(given[k]["ok"]), "note": str(given[k].get("note", "")).strip()}
        for k in required
    ]


def outcome_for_vendor(session: Session, version: VersionView) -> dict[str, Any]:
    """What the vendor sees of the review: status, approved scopes, per-scope verdicts and reasons
    (not who reviewed)."""
    return {
        "status": version.status,
        "approved_scopes": None if version.approved_scopes is None else list(version.approved_scopes),
        "decisions": [
            {
                "outcome": d.outcome,
                "scopes": d.scopes,
                "reason": d.reason,
                "decided_at": d.decided_at.isoformat(),
            }
            for d in decisions_of(session, version)
        ],
    }
