"""The reviewer's pages: the review queue, one version's review sheet (requested scopes with their
justifications, declarations, questionnaire answers, evidence files with their hashes, decisions so far)
with the checklist form, evidence downloads, and the audits due.

A decision is a form post with the session's CSRF token; ``screening.console_pages.decide_as`` applies
screening's own rules (a weaker mode only, a second sign-off by a different person for tier 3, no
reviewer of the vendor's own) and records the decision under the reviewer's username. A refused
decision shows the sheet again with the reason."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from appwarden.console import i18n
from appwarden.console.i18n import N_
from appwarden.console.labels import FIELDS, LISTING_STATES, MODES, RESOURCES
from appwarden.console.pages import ConsoleRoute, check_csrf, db_of, lang_of, page, settings_of, signed_in
from appwarden.db.base import utcnow
from appwarden.errors import AppwardenError, InvalidInput
from appwarden.marketplace.scopes import PII_FIELDS, FieldScope, Mode, parse_scope
from appwarden.marketplace.standing import find
from appwarden.obligations.endpoint_check import check_endpoint, endpoint_check_of
from appwarden.platform.roles import Role
from appwarden.screening import audits, review
from appwarden.screening.console_pages import decide_as, evidence_download
from appwarden.screening.rules import STRENGTH
from appwarden.screening.vocabulary import Outcome

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)

VERSION_STATES = {
    "draft": N_("Draft"),
    "submitted": N_("Submitted"),
    "in_review": N_("In review"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "superseded": N_("Superseded"),
}
# Why screening refused a decision, in the reviewer's language (any other: its English detail).
REFUSALS = {
    "same_reviewer": N_(
        "You have already decided on this version: a second reviewer must be another person."
    ),
    "reviewer_is_vendor": N_("You belong to this app's vendor and cannot review it."),
    "not_a_reviewer": N_("Only a reviewer or a security admin can decide."),
    "reason_required": N_("A weaker mode, a refusal and a rejection each need a reason."),
    "answers_not_accepted": N_("An answer is not accepted: reject the version instead."),
    "nothing_approved": N_("Every scope is refused: reject the version instead."),
    "not_weaker": N_("A scope can only be approved in a weaker mode (full value → masked → token)."),
    "version_decided": N_("This version is no longer under review."),
    "checklist_incomplete": N_("Every requested scope and every required answer needs a check."),
    "listing_blocked": N_(
        "This approval would list the app, but its vendor's erasure endpoint has not passed the check: "
        "run the check below first."
    ),
    "no_erasure_endpoint": N_("The vendor has registered no erasure endpoint for this app."),
}


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form as plain strings (the checklist's fields are named by row)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def choices(scope: str) -> list[tuple[str, str]]:
    """The decisions a reviewer may take on ``scope``: ``(value, label message id)``; a weaker mode
    only for an identifying field (screening checks it again)."""
    parsed = parse_scope(scope)
    out = [("approved", N_("Approve as asked"))]
    if isinstance(parsed, FieldScope) and parsed.field in PII_FIELDS:
        for mode in (Mode.MASKED, Mode.TOKEN):
            if STRENGTH[mode] < STRENGTH[parsed.mode]:
                out.append((f"weakened:{mode.value}", MODES[mode.value]))
    out.append(("refused", N_("Refuse")))
    return out


def scope_label(scope: str) -> tuple[str, str | None]:
    """A scope's field (or resource) label and its mode label, as message ids."""
    parsed = parse_scope(scope)
    if isinstance(parsed, FieldScope):
        return FIELDS.get(parsed.field, parsed.field), MODES.get(parsed.mode.value)
    return RESOURCES.get(parsed, parsed), None


def checklist(form: dict[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The scope decisions and answer checks of the posted form, as ``review.decide`` takes them."""
    scopes = []
    i = 0
    while f"scope_{i}" in form:
        verdict, _, mode = form.get(f"verdict_{i}", "").partition(":")
        scopes.append(
            {
                "scope": form[f"scope_{i}"],
                "verdict": verdict,
                "mode": mode or None,
                "reason": form.get(f"reason_{i}", ""),
            }
        )
        i += 1
    answers = []
    j = 0
    while f"question_{j}" in form:
        answers.append(
            {
                "question": form[f"question_{j}"],
                "ok": form.get(f"ok_{j}") == "on",
                "note": form.get(f"note_{j}", ""),
            }
        )
        j += 1
    return scopes, answers


@router.get("/reviews")
def review_queue(request: Request) -> Response:
    """Versions waiting for a decision, oldest submission first."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.REVIEWER)
        queue = review.queue(session)
    return page(request, "reviews.html", who=who, queue=queue, version_states=VERSION_STATES)


def _sheet_page(
    request: Request, slug: str, version: int | None, *, status: int = 200, error: str | None = None
) -> Response:
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.REVIEWER)
        app = find(session, slug)
        sheet = review.sheet(session, app, review.review_version(session, app, version))
        endpoint_ready, endpoint_reason = endpoint_check_of(session, app.id)
    number = sheet["version"]["version"]
    decided_by_me = any(d["reviewer"] == who.username for d in sheet["decisions"])
    return page(
        request,
        "review.html",
        who=who,
        status=status,
        sheet=sheet,
        number=number,
        error=error,
        done=request.query_params.get("done") == "1",
        decided_by_me=decided_by_me,
        endpoint_ready=endpoint_ready,
        endpoint_reason=endpoint_reason,
        checked=request.query_params.get("checked") == "1",
        open_for_decision=sheet["version"]["status"] in ("submitted", "in_review"),
        choices=choices,
        scope_label=scope_label,
        states=LISTING_STATES,
        version_states=VERSION_STATES,
    )


@router.get("/reviews/{slug}")
def review_sheet(request: Request, slug: str, version: int | None = None) -> Response:
    """The review sheet of the version under review (or ``version``) and the checklist form."""
    return _sheet_page(request, slug, version)


@router.post("/reviews/{slug}/decide")
def decide(request: Request, slug: str, form: FormDep) -> Response:
    """Record the signed-in reviewer's decision (approve, approve weaker, reject) under their name."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.REVIEWER)
        check_csrf(request, who, form.get("csrf_token"))
    try:
        number = int(form["version"]) if form.get("version") else None
        outcome = Outcome(form.get("outcome", ""))
    except ValueError:
        raise InvalidInput("the form names no version or outcome", code="invalid_decision") from None
    scopes, answers = checklist(form)
    try:
        with db_of(request).session() as session:
            decide_as(
                session,
                slug,
                username=who.username,
                outcome=outcome,
                version=number,
                scopes=scopes,
                answers=answers,
                reason=form.get("reason", ""),
                now=utcnow(),
            )
    except AppwardenError as exc:
        if exc.status == 404:
            raise
        message = REFUSALS.get(exc.code)
        text = i18n.gettext(lang_of(request), message) if message else exc.detail
        return _sheet_page(request, slug, number, status=exc.status, error=text)
    target = f"/console/reviews/{slug}?done=1" + (f"&version={number}" if number else "")
    return RedirectResponse(target, status_code=303)


@router.post("/reviews/{slug}/endpoint-check")
def endpoint_check(request: Request, slug: str, form: FormDep) -> Response:
    """Run the review's check of the vendor's erasure endpoint (a signed test call must get 2xx, an
    unsigned and a wrongly signed one 401) under the signed-in reviewer's name; the outcome is recorded
    whether it passes or not, and shown on the sheet."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.REVIEWER)
        check_csrf(request, who, form.get("csrf_token"))
    try:
        with db_of(request).session() as session, httpx.Client() as client:
            check_endpoint(session, settings_of(request), slug, client, actor=who.username, now=utcnow())
    except AppwardenError as exc:
        if exc.status == 404:
            raise
        message = REFUSALS.get(exc.code)
        text = i18n.gettext(lang_of(request), message) if message else exc.detail
        return _sheet_page(request, slug, None, status=exc.status, error=text)
    return RedirectResponse(f"/console/reviews/{slug}?checked=1", status_code=303)


@router.get("/reviews/{slug}/evidence/{evidence_id}")
def evidence(request: Request, slug: str, evidence_id: str, version: int | None = None) -> Response:
    """One evidence file of the version, as stored (a download; its SHA-256 in a header)."""
    with db_of(request).session() as session:
        signed_in(request, session, Role.REVIEWER)
        found = evidence_download(session, slug, version, evidence_id, settings_of(request).ensure_data_dir())
    quoted = found.filename.replace('"', "").encode("ascii", "replace").decode()
    return Response(
        found.content,
        media_type=found.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{quoted}"',
            "X-Evidence-SHA256": found.sha256,
        },
    )


@router.get("/audits")
def audits_due(request: Request) -> Response:
    """Open audits, soonest first (no date: due now)."""
    with db_of(request).session() as session:
        who = signed_in(request, session, Role.REVIEWER)
        due = audits.due(session, utcnow())
    return page(request, "review_audits.html", who=who, due=due, states=LISTING_STATES)
